"""Wall time of single CP2K labels with the campaign settings of ``flows/campaign_li_cp2k.yaml``.

Labels (no store): the free Li atom (10 Å box, UKS doublet, Γ, OT) and the perfect 12-atom antifluorite
Li2O cell (a = 4.61 Å, 2x2x2 Monkhorst-Pack mesh, diagonalisation + Fermi-Dirac 500 K), PBE / GTH /
DZVP-MOLOPT-SR-GTH / 400 Ry.  The largest force of the perfect crystal is the symmetry check (it must be ~0).
Writes ``bench/results/cp2k_label.json`` with wall time (s), energy (eV), max |F| (eV/Å) and the electronic state
per label, and the 1-minute load average before each label (other work on the machine slows CP2K down).

Run: ``python bench/bench_cp2k_label.py`` (needs ``scripts/setup_cp2k.sh``; minutes per label).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result


def main() -> dict:
    import numpy as np
    from pymatgen.core import Lattice, Structure

    from mlipflow.labeling.cp2k import Cp2kLabeler
    from mlipflow.labeling.electronic import with_system_charge

    fcc = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    li = [[x / 4, y / 4, z / 4] for x in (1, 3) for y in (1, 3) for z in (1, 3)]
    cells = {
        "li_atom_10A": Structure(Lattice.cubic(10.0), ["Li"], [[0.5, 0.5, 0.5]]),
        "li2o_12_atoms": Structure(Lattice.cubic(4.61), ["Li"] * 8 + ["O"] * 4, li + fcc),
    }
    labeler = Cp2kLabeler(cutoff=400.0, rel_cutoff=50.0, kspacing=0.7)
    out: dict = {"settings": labeler.info.settings, "labels": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cell in cells.items():
            load = os.getloadavg()[0]
            start = time.perf_counter()
            result = labeler.label_one(with_system_charge(cell), Path(tmp) / name)
            out["labels"][name] = {
                "seconds": time.perf_counter() - start, "load_1min_before": load, "n_atoms": len(cell),
                "energy_ev": result.energy, "max_force_ev_per_ang": float(np.abs(result.forces).max()),
                "electronic_state": result.details["electronic_state"],
            }  # fmt: skip
    return out


if __name__ == "__main__":
    write_result("cp2k_label", main())
