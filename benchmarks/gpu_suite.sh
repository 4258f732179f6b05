#!/usr/bin/env bash
# The GPU figures in one process (see benchmarks/suite.py for its parts): arithmetic settings,
# a paper-protocol run, CUDA graphs vs eager, a 10-class study (threads and processes), the
# reproduction check against Table 3, throughput, stacked vs sequential, and peak memory.
# Logs of runs on one H200: benchmarks/results/.
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
