#!/usr/bin/env bash
# Set up the environment (idempotent) and run the main job on the embedded store: `mlipflow demo`.
# Extra arguments go to `mlipflow demo` (e.g. --epochs 20, --submit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/mlipflow demo "$@"
