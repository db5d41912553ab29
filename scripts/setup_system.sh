#!/usr/bin/env bash
# System packages some tests use, from Debian: chromium (the HTML report rendered headless) and
# cp2k (real DFT single points, via scripts/setup_cp2k.sh).  Idempotent; needs root for apt-get.
# Without root or without them, the tests that need them skip and say why.
set -uo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v cp2k.psmp >/dev/null 2>&1 || need+=(cp2k)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "[setup] not root or no apt-get: ${need[*]} not installed; the tests that need them will skip"
    exit 0
  fi
  echo "[setup] apt-get install ${need[*]}"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
    || echo "[setup] apt-get install ${need[*]} failed; the tests that need them will skip"
fi
if command -v cp2k.psmp >/dev/null 2>&1; then
  PYTHON="${MLIPFLOW_VENV:-.venv}/bin/python" bash scripts/setup_cp2k.sh >/dev/null || echo "[setup] CP2K data directory not generated; CP2K tests will skip"
fi
exit 0
