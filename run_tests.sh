#!/usr/bin/env bash
# Runs the test suite (creating .venv on first use). Extra arguments go to
# pytest, e.g. `bash run_tests.sh --run_slow` or `bash run_tests.sh -k yoon`.
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup_env.sh
python -m pytest -q -p no:cacheprovider "$@" tests
