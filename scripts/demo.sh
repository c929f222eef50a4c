#!/usr/bin/env bash
# Set up a virtual environment in .venv (if needed) and run the embedded offline demo:
# synthetic motion videos -> self-supervised pretraining -> fine-tuning vs training from scratch.
# Extra arguments go to `videomae demo` (for example --seed 1 or --out my-folder).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Any torch >= 2.4 works; where none is installed, take the 2.13.0 wheel (a CPU build here).
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e .
exec .venv/bin/videomae demo "$@"
