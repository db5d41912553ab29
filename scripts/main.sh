#!/usr/bin/env bash
# Set up the environment (idempotent) and run the main job on the embedded store: `mlipflow run flows/campaign_li2o.yaml`.
# An argument replaces the campaign file.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/mlipflow run "${@:-flows/campaign_li2o.yaml}"
