#!/usr/bin/env bash
# Runs the test suite (creating .venv on first use). Extra arguments go to
# pytest, e.g. `bash run_tests.sh --run_slow` or `bash run_tests.sh -k yoon`.
# Tests run in TEST_WORKERS (default 2) processes, one test file each at a
# time (--dist loadfile keeps module fixtures built once); TEST_WORKERS=0 runs
# them in this process.
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup_env.sh
python -m pytest -q -p no:cacheprovider -n "${TEST_WORKERS:-2}" --dist loadfile "$@" tests
