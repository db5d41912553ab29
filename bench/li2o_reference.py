"""Reference data of the Li2O benchmarks: CHGNet MD of bulk Li2O and a Σ5 grain boundary (cached on disk).

Frames come from :func:`mlipflow.sampling.reference.run_reference_md` (the campaign's own reference-MD stage)
with the CHGNet surrogate: a *training pool* (several independent walkers per cell and temperature) and a *test
set* from separate walkers (other seeds), never in the pool.  Labels are CHGNet's (a surrogate, not DFT).  The
frames are cached as extxyz in ``$MLIPFLOW_BENCH_CACHE`` (default ``~/.cache/mlipflow-bench``) because the
reference MD costs 2–3 CPU-s per step of a 100-atom cell.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ase.io import read, write

from mlipflow.data import Dataset
from mlipflow.data.io import frame_to_extxyz_atoms
from mlipflow.labeling.surrogate import SurrogateLabeler
from mlipflow.sampling.md import MDSettings
from mlipflow.sampling.reference import run_reference_md
from mlipflow.settings import load_settings
from mlipflow.storage import get_stores
from mlipflow.structures.structure_set import build_structure_set

logger = logging.getLogger(__name__)
CACHE = Path(os.environ.get("MLIPFLOW_BENCH_CACHE", Path.home() / ".cache" / "mlipflow-bench"))
CELLS = {
    "max_atoms": 130, "cutoff": 4.0,
    "materials": {"Li2O": {"prototype": "Li2O"}},
    "entries": [
        {"name": "bulk", "kind": "bulk", "material": "Li2O", "min_length": 9.0},
        {"name": "gb", "kind": "grain_boundary", "material": "Li2O", "rotation_axis": [1, 0, 0], "sigmas": [5],
         "min_grain_thickness": 5},
    ],
}


def cells():
    """The bulk (96 atoms) and the stoichiometric Σ5 boundary cell (120 atoms; the charged one is left out)."""
    return [s for s in build_structure_set(CELLS).structures if s.composition["Li"] == 2 * s.composition["O"]]


def reference_frames(kind: str, *, temperatures=(300.0, 900.0), replicas: int = 2, steps: int = 50,
                     equilibration: int = 10, record_every: int = 5, seed: int = 0, processes: int = 2):
    """Labeled extxyz images (``REF_*`` keys, ``group`` = trajectory) of the pool (``kind="pool"``) or test set."""
    tag = f"{kind}-T{'-'.join(f'{t:g}' for t in temperatures)}-r{replicas}-n{steps}-e{equilibration}-s{seed}"
    path = CACHE / f"li2o-{tag}.xyz"
    if path.is_file():
        return read(path, ":")
    home = CACHE / f"home-{tag}"
    stores = get_stores(load_settings(home=home))
    settings = MDSettings(n_steps=steps, record_every=record_every, timestep=2.0, seed=seed, velocity_scale=2.0)
    summary = run_reference_md(stores, cells(), SurrogateLabeler(calculator="chgnet"), list(temperatures), settings,
                               replicas=replicas, equilibration=equilibration, processes=processes)
    dataset = Dataset(stores)
    images = []
    for fid in summary.frame_ids:
        frame = dataset.get(fid)
        atoms = frame_to_extxyz_atoms(frame, "train")
        atoms.info["group"] = frame.provenance.group
        atoms.info["temperature"] = frame.provenance.temperature
        atoms.info["family"] = frame.provenance.family
        images.append(atoms)
    CACHE.mkdir(parents=True, exist_ok=True)
    write(path, images, format="extxyz", write_results=False)
    logger.info("reference frames %s: %d frames in %.0f s -> %s", tag, len(images), summary.seconds, path)
    return images


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(len(reference_frames("pool")), len(reference_frames("test", replicas=1, seed=1000)))
