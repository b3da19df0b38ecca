# Sourced by scripts/setup, scripts/test and scripts/demo: picks the project's Python.
# An active virtual environment is used as it is; otherwise the project's own .venv,
# created on first use (and reused afterwards), so nothing is installed into the
# system's or pyenv's interpreter.
if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
  PY="$VIRTUAL_ENV/bin/python"
else
  PY="$PWD/.venv/bin/python"
fi
export PATH="$(dirname "$PY"):$PATH"
