# Sourced by reference_script.sh and run_tests.sh: creates .venv on first use.
# Re-installs when pyproject.toml or setup.py changed since the last install
# (the stamp is the two files concatenated).
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_venv="$_root/.venv"
_stamp="$_venv/.installed-setup-py"
if [ ! -x "$_venv/bin/python" ] \
    || ! cat "$_root/pyproject.toml" "$_root/setup.py" | cmp -s - "$_stamp"; then
  _python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  echo "[setup] creating $_venv with $_python (first use: ~1-2 min)" >&2
  "$_python" -m venv "$_venv"
  "$_venv/bin/python" -m pip install -q --upgrade pip
  "$_venv/bin/python" -m pip install -q -e "$_root[test]"
  cat "$_root/pyproject.toml" "$_root/setup.py" > "$_stamp"
fi
export PATH="$_venv/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
