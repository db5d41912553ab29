"""Cost of each benchmark of ``mlipflow.benchmark`` for a ~200-atom cell.

The cell is bcc Li 5x5x4 (200 atoms).  Wherever a model is needed the calculator is ASE's Lennard-Jones
(sigma 2.7 Å, epsilon 0.05 eV, cutoff 6 Å): a cheap stand-in, so the numbers are the cost of the benchmark's own
machinery (MD driver, analysis, fits, plots), not of a model.  Multiply the MD-driven items by the model's cost
per step (MACE on CPU: about 1 ms per atom-step, see docs/environment.md) to estimate a real run.
Writes ``bench/results/benchmark.json`` with the wall time (s) and peak RSS (MB) after each item.

Run: ``python bench/bench_benchmark.py``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb, write_result

LJ = {"sigma": 2.7, "epsilon": 0.05, "rc": 6.0}
SEED = 0


def main() -> dict:
    import numpy as np
    from ase.build import bulk
    from ase.calculators.lj import LennardJones

    from mlipflow.benchmark import dynamics, energetics, errors, mechanics, speed, stability, structure
    from mlipflow.benchmark.plotting import figure_to_base64
    from mlipflow.benchmark.report import report
    from mlipflow.benchmark.results import save_result
    from mlipflow.labeling.surrogate import SurrogateLabeler

    cell = bulk("Li", "bcc", a=3.44, cubic=True).repeat((5, 5, 4))
    calc = LennardJones(**LJ)
    timings: dict[str, dict] = {}

    def timed(name: str, fn, **info):
        start = time.perf_counter()
        out = fn()
        timings[name] = {"seconds": round(time.perf_counter() - start, 3), "peak_rss_mb": round(peak_rss_mb(), 1),
                         **info}
        logging.getLogger("bench").info("%s: %.2f s", name, timings[name]["seconds"])
        return out

    n_md, every = 500, 5
    frames = timed("md_run_lj", lambda: errors.run_md(cell, calc, temperature_K=600, n_steps=n_md,
                                                      sample_every=every, seed=SEED),
                   steps=n_md, frames=n_md // every)
    reference = SurrogateLabeler(calculator="morse", calculator_kwargs={"epsilon": 0.1, "r0": 3.0, "rho0": 4.0})
    rep, samples, _ = timed("trajectory_test_set_errors", lambda: errors.trajectory_errors(
        cell, calc, reference, model="lj", temperature_K=600, n_steps=100, sample_every=10, seed=SEED),
        md_steps=100, frames=10, reference="morse (surrogate)")
    timed("error_plots", lambda: [figure_to_base64(errors.plot_parity(samples)),
                                  figure_to_base64(errors.plot_error_distribution(samples))])
    r = timed("rdf", lambda: structure.rdf(frames, rmax=6.0), frames=len(frames))
    timed("rdf_compare", lambda: structure.compare_distributions(r, r))
    timed("adf", lambda: structure.adf(frames[::5], cutoff=3.2), frames=len(frames[::5]))
    vel = dynamics.velocities_from_images(frames)
    timed("vdos", lambda: dynamics.vdos(vel, every * 1.0, frames[0].get_chemical_symbols()), frames=len(frames))
    pos = timed("unwrap", lambda: dynamics.unwrap_positions(frames))
    timed("msd_diffusivity_blocks", lambda: dynamics.diffusivity(pos, every * 1.0, dynamics.species_groups(cell),
                                                                 n_blocks=4))
    timed("region_msd", lambda: dynamics.msd(pos, every * 1.0, dynamics.region_groups(
        cell, boundaries=[0.0], half_width=3.0)))
    t = np.array([800.0, 1000.0, 1200.0])
    timed("arrhenius_fit", lambda: dynamics.arrhenius_fit(t, 1e-3 * np.exp(-0.3 / (dynamics.KB_EV * t))))
    relaxed = timed("relax_cell_200_atoms", lambda: mechanics.relax(cell, calc, fmax=1e-3))
    timed("eos_7_points", lambda: mechanics.equation_of_state(relaxed, calc))
    timed("elastic_12_strains", lambda: mechanics.elastic_constants(relaxed, calc))
    timed("phonon_dos_2atom_cell_4x4x4", lambda: mechanics.phonon_dos(
        bulk("Li", "bcc", a=relaxed.cell.lengths()[0] / 5, cubic=True), calc, supercell=(4, 4, 4)))
    slab = cell.copy()
    slab.center(vacuum=8.0, axis=2)
    timed("surface_energy", lambda: energetics.surface_energy(slab, bulk("Li", "bcc", a=3.44, cubic=True), calc))
    timed("stability_1000_steps", lambda: stability.run_stability(cell, calc, temperature_K=600, n_steps=1000,
                                                                  check_every=20, seed=SEED), steps=1000)
    unit = bulk("Li", "bcc", a=3.44, cubic=True)
    timed("speed_3_sizes", lambda: speed.md_speed(unit, calc, sizes=(54, 128, 250), n_steps=20))

    with tempfile.TemporaryDirectory() as home:
        os.environ["MLIPFLOW_HOME"] = home
        from mlipflow.storage import get_stores

        stores = get_stores()
        save_result(stores, subject="bench", kind="errors", model="lj", reference=rep.reference, summary={},
                    result=rep, plots={"parity": figure_to_base64(errors.plot_parity(samples))})
        timed("report_html", lambda: report("bench", Path(home) / "bench.html", stores=stores))
    return {"cell": {"formula": cell.get_chemical_formula(), "n_atoms": len(cell)},
            "calculator": "ase LennardJones(sigma=2.7, epsilon=0.05, rc=6.0) as model; Morse as reference",
            "load_average": os.getloadavg(), "items": timings}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_result("benchmark", main())
