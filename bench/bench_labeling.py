"""Surrogate labeling throughput through the job system vs a plain loop over the same calculator.

Writes ``bench/results/labeling.json``: frames per minute of (a) a plain Python loop calling the calculator,
(b) :func:`mlipflow.labeling.label_structures` (ledger: register, claim, write each label), and
(c) the same through a jobflow flow of :class:`~mlipflow.labeling.LabelMaker` batches run locally on
the embedded store.  The ratios (b)/(a) and (c)/(a) are the orchestration cost.  A fresh store (temporary
``MLIPFLOW_HOME``) is used for each.

Usage: ``python bench/bench_labeling.py [--calculator chgnet|lj] [--frames 40] [--batch-size 20] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk
from pymatgen.io.ase import AseAtomsAdaptor

logger = logging.getLogger("bench_labeling")

LJ = {"sigma": 2.7, "epsilon": 0.05, "rc": 5.0}


def structures(n: int, seed: int, size: int) -> list:
    """n rattled bcc Li cells of 2*size**3 atoms (Å)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat((size, size, size))
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        s = AseAtomsAdaptor.get_structure(atoms)
        s.properties["provenance"] = {
            "family": "bulk",
            "generator": "rattle",
            "parameters": {"i": i},
            "parent": None,
        }
        out.append(s)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calculator", default="chgnet", choices=["chgnet", "lj"])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--size", type=int, default=3, help="supercell repeats (2*size^3 atoms)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "labeling.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)

    home = tempfile.mkdtemp(prefix="mlipflow_bench_labeling_")
    os.environ["MLIPFLOW_HOME"] = home
    from mlipflow.execution import run_locally
    from mlipflow.labeling import LabelMaker, SurrogateLabeler, label_structures
    from mlipflow.settings import load_settings
    from mlipflow.storage import get_stores

    kwargs = LJ if args.calculator == "lj" else {}
    frames = structures(args.frames, args.seed, args.size)
    natoms = len(frames[0])

    # (a) plain loop over the same calculator object
    labeler = SurrogateLabeler(calculator=args.calculator, calculator_kwargs=kwargs)
    labeler.setup()
    calc = labeler._calc
    labeler.label_one(frames[0])  # warm-up (model load, first-call overheads)
    start = time.perf_counter()
    for s in frames:
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms.calc = calc
        atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    plain = time.perf_counter() - start
    logger.info("plain loop: %.2f s", plain)

    # (b) the batch runner with the ledger, on a fresh store
    stores = get_stores(load_settings(home=Path(home) / "b"))
    start = time.perf_counter()
    summary = label_structures(frames, labeler, stores=stores)
    ledger_time = time.perf_counter() - start
    assert summary.counts == {"labeled": len(frames)}, summary.counts
    start = time.perf_counter()
    again = label_structures(frames, labeler, stores=stores)
    reuse_time = time.perf_counter() - start
    logger.info("ledger: %.2f s; relabel (all reused): %.2f s", ledger_time, reuse_time)

    # (c) through jobflow: LabelMaker batches + summary job, run locally on another fresh store
    os.environ["MLIPFLOW_HOME"] = str(Path(home) / "c")
    stores_c = get_stores(load_settings())
    flow = LabelMaker(labeler=labeler, batch_size=args.batch_size).make(frames)
    start = time.perf_counter()
    run_locally(flow, stores=stores_c, root_dir=Path(home) / "runs")
    jobs_time = time.perf_counter() - start
    labeled = stores_c.frames.count_documents({"status": "labeled"})
    assert labeled == len(frames), labeled
    logger.info("jobflow: %.2f s", jobs_time)

    def fpm(seconds: float) -> float:
        return round(len(frames) / seconds * 60.0, 1)

    result = {
        "benchmark": "surrogate labeling throughput",
        "calculator": labeler.info.describe(),
        "frames": len(frames),
        "atoms_per_frame": natoms,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "frames_per_minute": {
            "plain_loop": fpm(plain),
            "ledger": fpm(ledger_time),
            "jobflow": fpm(jobs_time),
        },
        "seconds": {
            "plain_loop": round(plain, 3),
            "ledger": round(ledger_time, 3),
            "jobflow": round(jobs_time, 3),
            "relabel_all_reused": round(reuse_time, 3),
        },
        "orchestration_cost_ratio": {
            "ledger_vs_plain": round(ledger_time / plain, 3),
            "jobflow_vs_plain": round(jobs_time / plain, 3),
        },
        "overhead_seconds_per_frame": {
            "ledger": round((ledger_time - plain) / len(frames), 4),
            "jobflow": round((jobs_time - plain) / len(frames), 4),
        },
        "relabel_calculator_calls": again.calculator_calls,
        "store": "embedded (litemongo)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    logger.info(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
