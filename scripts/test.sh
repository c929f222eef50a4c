#!/usr/bin/env bash
# Set up a virtual environment in .venv (if needed) and run the test suite.
# torch is pinned for the test environment only (a CPU wheel where available); the
# library itself accepts any torch >= 2.4. The serve, export, features and ray extras are installed
# so that `videomae serve`, `videomae export`, Parquet features and `embed --engine ray` are tested too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test,serve,export,features,ray]"
exec .venv/bin/python -m pytest -q "$@"
