"""The training sweep behind mlipflow's CPU defaults; writes ``bench/results/training_sweep.json``.

Data: CHGNet (surrogate, not DFT) reference MD of bulk Li2O (96 atoms) and a Σ5 grain boundary (120 atoms) at
300 and 900 K (:mod:`li2o_reference`): 8 trajectories in the pool (6 train, 2 valid, whole trajectories), a test
set of 4 *other* trajectories (other seeds).  Every configuration is trained with mace-torch through
:func:`mlipflow.training.trainer.train_model` (so the kept epoch is the best-validation one) and evaluated on the
test set: force-component RMSE (meV/Å) and energy RMSE (meV/atom), overall and per cell and temperature, against
the wall time.  The warm-start rows train on half of the training trajectories first, then continue on all of them
from that model, against training on all of them from scratch.

Usage: ``python bench/bench_training_sweep.py [--parallel 2] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, write_result
from li2o_reference import reference_frames

from mlipflow.data import Dataset, LabeledFrame, LabelerInfo, Provenance
from mlipflow.settings import load_settings
from mlipflow.storage import get_stores
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.trainer import load_calculator, train_model

logger = logging.getLogger("bench_training_sweep")
BASE = {"num_channels": 16, "max_L": 0, "max_ell": 1, "correlation": 2, "r_max": 4.0, "num_radial_basis": 6,
        "batch_size": 4, "valid_batch_size": 8, "lr": 0.01, "forces_weight": 100.0, "energy_weight": 1.0,
        "default_dtype": "float32", "ema": True, "ema_decay": 0.99, "swa": True, "swa_lr": 0.001,
        "swa_energy_weight": 1000.0, "max_num_epochs": 30}
CONFIGS = {
    "16ch L0 corr2 r4 f32 EMA+stage2 30ep": {},
    "16ch L0 corr2 r4 f32 EMA+stage2 15ep": {"max_num_epochs": 15},
    "16ch L0 corr2 r4 f64 EMA+stage2 30ep": {"default_dtype": "float64"},
    "16ch L0 corr2 r4 f32 plain 30ep": {"ema": False, "swa": False},
    "16ch L0 corr2 r4 f32 EMA+stage2 ZBL 30ep": {"pair_repulsion": True},
    "16ch L0 corr2 r4 ell3 f32 EMA+stage2 30ep": {"max_ell": 3},
    "32ch L0 corr3 r5 ell3 f32 EMA+stage2 15ep": {"num_channels": 32, "correlation": 3, "r_max": 5.0, "max_ell": 3,
                                                   "num_radial_basis": 8, "max_num_epochs": 15},
}
LABELER = LabelerInfo(name="chgnet", kind="surrogate", version="bench", settings={"calculator": "chgnet"})


def _frames(images, split: str) -> list[LabeledFrame]:
    out = []
    for a in images:
        atoms = a.copy()
        frame = LabeledFrame.from_atoms(
            atoms, LABELER, energy=a.info["REF_energy"], forces=a.arrays["REF_forces"],
            provenance=Provenance(origin="reference_md", family=a.info.get("family"), group=a.info.get("group"),
                                  temperature=a.info.get("temperature"), config_type=split))
        out.append(frame)
    return out


def make_version(stores, train_groups: list[str], pool, name: str) -> str:
    """A version with whole trajectories as splits: ``train_groups`` train, the pool's last two groups valid."""
    groups = sorted({a.info["group"] for a in pool})
    valid_groups = groups[-2:]
    frames = _frames([a for a in pool if a.info["group"] in train_groups], "train")
    valid = _frames([a for a in pool if a.info["group"] in valid_groups], "valid")
    dataset = Dataset(stores)
    dataset.add_frames(frames + valid)
    manifest_ids = [f.content_hash for f in frames]
    version = dataset.create_version(name, frame_ids=manifest_ids, fractions={"train": 1.0})
    # the validation frames: a child version whose new frames all go to valid
    child = dataset.create_version(name, parent=version.id, frame_ids=[f.content_hash for f in valid],
                                   fractions={"train": 0.0, "valid": 1.0, "test": 0.0})
    return child.id


def test_errors(model_path: Path, dtype: str, test) -> dict:
    calc = load_calculator(model_path, default_dtype=dtype)
    by: dict[str, list] = {}
    de, df = [], []
    for a in test:
        atoms = a.copy()
        atoms.calc = calc
        e = (atoms.get_potential_energy() - a.info["REF_energy"]) / len(a)
        f = atoms.get_forces() - a.arrays["REF_forces"]
        de.append(e)
        df.append(f.ravel())
        key = f"{a.info['family']} {a.info['temperature']:g} K"
        by.setdefault(key, []).append(f.ravel())
    return {"rmse_e_meV_atom": 1e3 * float(np.sqrt(np.mean(np.square(de)))),
            "rmse_f_meV_A": 1e3 * float(np.sqrt(np.mean(np.square(np.concatenate(df))))),
            "rmse_f_meV_A_by_cell": {k: 1e3 * float(np.sqrt(np.mean(np.square(np.concatenate(v)))))
                                     for k, v in sorted(by.items())}}


def isolated_atom_energies() -> dict[str, float]:
    """CHGNet's energies of one Li and one O atom in a 15 Å box (the E0s a campaign labels in iteration 0)."""
    from mlipflow.labeling.surrogate import SurrogateLabeler
    from mlipflow.structures.bulk import isolated_atoms

    labeler = SurrogateLabeler(calculator="chgnet")
    return {s.species[0].symbol: float(labeler.label_one(s).energy) for s in isolated_atoms(["Li", "O"], box=15.0)}


def run_config(root: Path, name: str, overrides: dict, pool, test, train_groups, init_from=None, tag="",
               e0s=None) -> dict:
    stores = get_stores(load_settings(home=root / "home"))
    version = make_version(stores, train_groups, pool, "sweep")
    hp = MaceHyperParams(**{**BASE, **overrides, "seed": 7})
    start = time.perf_counter()
    record = train_model(stores, version, hp, name=f"sweep{tag}", init_from=init_from, e0s=e0s)
    wall = time.perf_counter() - start
    from mlipflow.training.registry import ModelRegistry

    model_file = ModelRegistry(stores).model_file(record.id)
    errs = test_errors(model_file, hp.default_dtype, test)
    valid = record.errors.get("valid", {}).get("all", {})
    row = {"config": name, "hyperparams": {**BASE, **overrides}, "wall_s": wall, "epochs": hp.max_num_epochs,
           "s_per_epoch": wall / hp.max_num_epochs, "kept_epoch": record.kept_epoch, "kept_rule": record.kept_rule,
           "train_frames": record.extra["counts"]["train"], "valid_frames": record.extra["counts"]["valid"],
           "valid_rmse_f_meV_A": 1e3 * valid.get("rmse_f", float("nan")),
           "valid_rmse_e_meV_atom": 1e3 * valid.get("rmse_e_per_atom", float("nan")),
           "test": errs, "model_id": record.id, "warm_start": record.warm_start}
    logger.info("%s: %.0f s, test F %.1f meV/Å, E %.2f meV/atom (kept epoch %s)", name, wall,
                errs["rmse_f_meV_A"], errs["rmse_e_meV_atom"], record.kept_epoch)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--skip-warm", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("jobflow", "fireworks", "mlipflow.training.mace_runner"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    pool = reference_frames("pool")
    test = reference_frames("test", replicas=1, seed=1000)
    groups = sorted({a.info["group"] for a in pool})
    train_groups = groups[:-2]
    e0s = isolated_atom_energies()
    logger.info("E0s (CHGNet isolated atoms): %s eV; %d pool frames in %d trajectories, %d test frames", e0s,
                len(pool), len(groups), len(test))
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlipflow-sweep-") as tmp:
        root = Path(tmp)
        configs = {k: v for k, v in CONFIGS.items() if not args.only or k in args.only}
        with ThreadPoolExecutor(max_workers=args.parallel) as ex:
            futures = [ex.submit(run_config, root / f"c{i}", k, v, pool, test, train_groups, tag=f"{i}", e0s=e0s)
                       for i, (k, v) in enumerate(configs.items())]
            rows = [f.result() for f in futures]
        warm = []
        if not args.skip_warm:
            half = train_groups[::2]
            first = run_config(root / "w", "iteration 0 (half the training trajectories, 30 ep)", {}, pool, test,
                               half, tag="w0", e0s=e0s)
            with ThreadPoolExecutor(max_workers=args.parallel) as ex:
                f_warm = ex.submit(run_config, root / "w", "warm start on all (10 ep)", {"max_num_epochs": 10}, pool,
                                   test, train_groups, init_from=first["model_id"], tag="w1", e0s=e0s)
                f_warm20 = ex.submit(run_config, root / "w", "warm start on all (15 ep, lr 0.005)",
                                     {"max_num_epochs": 15, "lr": 0.005}, pool, test, train_groups,
                                     init_from=first["model_id"], tag="w2", e0s=e0s)
                warm = [first, f_warm.result(), f_warm20.result()]
    payload = {
        "description": __doc__.split("\n\n")[1].replace("\n", " "),
        "machine": machine(), "parallel_trainings": args.parallel,
        "pool_frames": len(pool), "test_frames": len(test), "e0s_eV": e0s, "configs": rows, "warm_start": warm,
    }
    write_result("training_sweep", payload)


if __name__ == "__main__":
    main()
