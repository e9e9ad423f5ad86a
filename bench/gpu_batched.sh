#!/bin/sh
# Batched client training on a GPU against one-core sequential training on the CPU (see
# bench/README.md, "batched_training.py"). Needs python with torch and numpy only: sinsim's
# learn package is imported from this checkout, no SimPy, Skyfield or pydantic. Without a GPU
# it says so and measures on the CPU. Extra arguments go to bench/batched_training.py
# (e.g. --clients 100). About a minute; stopped after 4.5 minutes.
set -e
cd "$(dirname "$0")/.."
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
exec timeout 270 "$PYTHON" bench/batched_training.py --device cuda --threads 1 "$@"
