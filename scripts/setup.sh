#!/usr/bin/env bash
# Set up (or reuse) the virtual environment: torch's CPU build first, then mlipflow and its pinned stack.
# Idempotent: a second run with unchanged pyproject.toml/constraints does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${MLIPFLOW_VENV:-.venv}"
PY="${PYTHON:-python3}"
want="$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -c1-64)"
stamp="$VENV/.mlipflow-setup"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] environment $VENV is up to date"
  exit 0
fi
echo "[setup] installing torch 2.13.0 (CPU build) first, then mlipflow (a few minutes the first time)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e ".[test]"
echo "$want" > "$stamp"
echo "[setup] done"
