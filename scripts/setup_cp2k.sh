#!/usr/bin/env bash
# Install CP2K (Debian package) and generate pymatgen's CP2K data directory from Debian's data files.
#
# Idempotent: re-running it does nothing that is already done.  Usable in CI (run as root for apt-get,
# or with cp2k already installed).  Prints the environment variables to export at the end.
#
#   MLIPFLOW_CP2K_DATA_DIR   where the pymatgen CP2K data (one YAML file per element) is written
#                            (default: ${XDG_DATA_HOME:-$HOME/.local/share}/mlipflow/pmg_cp2k_data)
#   CP2K_SHARE               where Debian's CP2K data files are (default /usr/share/cp2k)
set -euo pipefail

CP2K_SHARE="${CP2K_SHARE:-/usr/share/cp2k}"
DEST="${MLIPFLOW_CP2K_DATA_DIR:-${PMG_CP2K_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/mlipflow/pmg_cp2k_data}}"

if ! command -v cp2k.psmp >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "cp2k.psmp not found and not root: run 'apt-get install -y cp2k' as root" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cp2k >/dev/null
fi

# MPI (OpenMPI) needs a loopback interface; say so early instead of failing inside a labeling job
if command -v ip >/dev/null 2>&1 && ! ip addr show lo 2>/dev/null | grep -q "UP"; then
    echo "warning: loopback interface is down; cp2k.psmp (OpenMPI) will fail: run 'ip link set lo up'" >&2
fi

if [ -s "$DEST/Li" ] && [ -s "$DEST/O" ] && [ -f "$DEST/.complete" ]; then
    echo "pymatgen CP2K data directory already generated: $DEST"
else
    PY="${PYTHON:-python}"
    STAGE="$(mktemp -d)"
    trap 'rm -rf "$STAGE"' EXIT
    for f in BASIS_MOLOPT BASIS_MOLOPT_UZH BASIS_ADMM BASIS_ADMM_MOLOPT BASIS_ADMM_UZH GTH_POTENTIALS POTENTIAL_UZH; do
        if [ -f "$CP2K_SHARE/$f" ]; then cp "$CP2K_SHARE/$f" "$STAGE/"; fi
    done
    rm -rf "$DEST"
    mkdir -p "$(dirname "$DEST")"
    # pmg config asks before writing into an existing directory: DEST was removed above, so it does not ask
    "$PY" -m pymatgen.cli.pmg config --cp2k "$STAGE" "$DEST" >/dev/null
    touch "$DEST/.complete"
    echo "generated pymatgen CP2K data directory: $DEST"
fi

echo "export PMG_CP2K_DATA_DIR=$DEST"
echo "export PMG_DEFAULT_CP2K_FUNCTIONAL=PBE"
if [ "$(id -u)" -eq 0 ]; then
    echo "export ATOMATE2_CP2K_CMD='mpirun --allow-run-as-root -np 1 cp2k.psmp'"
fi
