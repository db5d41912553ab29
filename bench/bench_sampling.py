"""Committee MD speed: steps/s of ASE Langevin MD with a 3-model MACE committee vs a single model, 64 and 512 atoms.

No trained model is shipped or downloadable here, so the members are freshly initialised MACE models of the size
measured in docs/environment.md (32 channels, L=0, r_max 5 Å, 2 interactions, float32; different seeds).  Speed
does not depend on the weights.  Two committee forms are timed: mace's own ``MACECalculator(models=[...])`` (one
calculator, per-member forces in ``forces_comm``) and a list of three single-model calculators (mean and spread
computed by mlipflow).  The 512-atom runs are a few steps only (about 1 s per step per model on this machine):
steps/s is measured on those steps, not extrapolated from 64 atoms.

Run: ``python bench/bench_sampling.py`` -> ``bench/results/sampling.json``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn constants under torch >= 2.6 (see environment.md)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from ase.build import bulk
from common import peak_rss_mb, write_result

from mlipflow.sampling import MDSettings, run_md

logger = logging.getLogger("bench_sampling")


def tiny_mace(seed: int) -> torch.nn.Module:
    """An untrained MACE for Li (32x0e, 2 interactions, r_max 5 Å), float32."""
    from e3nn import o3
    from mace import modules

    torch.manual_seed(seed)
    model = modules.ScaleShiftMACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2, num_elements=1, hidden_irreps=o3.Irreps("32x0e"), MLP_irreps=o3.Irreps("16x0e"),
        gate=torch.nn.functional.silu, atomic_energies=np.array([-1.9]), avg_num_neighbors=14.0,
        atomic_numbers=[3], correlation=3, radial_type="bessel", atomic_inter_scale=0.1, atomic_inter_shift=0.0,
    )
    return model.float()


def calculators():
    from mace.calculators import MACECalculator

    models = [tiny_mace(s) for s in range(3)]
    single = MACECalculator(models=[models[0]], device="cpu", default_dtype="float32")
    joint = MACECalculator(models=models, device="cpu", default_dtype="float32")
    members = [MACECalculator(models=[m], device="cpu", default_dtype="float32") for m in models]
    return {"single": single, "committee_mace_models": joint, "committee_list": members}


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    calcs = calculators()
    results = []
    for reps, steps in (((4, 4, 2), 20), ((8, 8, 4), 3)):
        atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat(reps)
        for name, calc in calcs.items():
            settings = MDSettings(timestep=1.0, n_steps=steps, record_every=steps, seed=0)
            run_md(atoms, calc, 300.0, MDSettings(n_steps=1, record_every=1), monitors=[])  # warm-up (JIT, caches)
            t = time.perf_counter()
            res, _ = run_md(atoms, calc, 300.0, settings, monitors=[])
            wall = time.perf_counter() - t
            row = {"n_atoms": len(atoms), "calculator": name, "steps": res.n_steps,
                   "steps_per_second": res.n_steps / wall, "seconds": wall,
                   "max_force_spread_eV_per_A": res.max_force_spread}
            results.append(row)
            print(row)
    for n in (64, 512):
        single = next(r for r in results if r["n_atoms"] == n and r["calculator"] == "single")
        for r in results:
            if r["n_atoms"] == n:
                r["slowdown_vs_single"] = single["steps_per_second"] / r["steps_per_second"]
    write_result("sampling", {
        "description": "ASE Langevin NVT with a 3-member MACE committee vs one model (untrained weights, "
                       "32x0e, 2 interactions, float32, 1 torch thread, CPU, machine shared with other jobs)",
        "note": "512-atom rows measured on 3 steps after a 1-step warm-up; 64-atom rows on 20 steps",
        "results": results, "peak_rss_mb": peak_rss_mb(),
    })


if __name__ == "__main__":
    main()
