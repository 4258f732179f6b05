#!/usr/bin/env bash
# Every speed figure of issue 8 on one GPU, in under 8 minutes (see benchmarks/suite.py):
# one paper-protocol run, engine vs reference loop with achieved vs peak FLOP/s for the quick
# and paper networks, stacked K=6 and K=24 λ sweeps vs sequential, and peak memory.
#
#   bash benchmarks/gpu_suite.sh [--data-root DIR] [--device cuda]
#   bash benchmarks/gpu_suite.sh --smoke      # CPU, tiny sizes, well under a minute (CI)
#
# Python: $PYTHON if set, else the repository's .venv, else python3. The data root defaults to
# $IAEAD_DATA_ROOT, else ../shared/data when it exists, else ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if [ -z "${IAEAD_DATA_ROOT:-}" ] && [ -d ../shared/data ]; then
  export IAEAD_DATA_ROOT=../shared/data
fi
exec "$PY" benchmarks/suite.py "$@"
