"""Benchmark of the training stage on CPU; writes ``bench/results/training.json``.

* Training throughput (frames x epochs per second, counting only the epochs' wall time as measured from
  mace-torch's own log timestamps, and the whole run's wall time including start-up) for two model sizes.
* Committee training wall time (N members as parallel child processes) against N single trainings one
  after the other.

Data: toy Morse-labeled 12-atom Li2O cells (``mlipflow.training.synthetic``), never DFT.
Usage: ``python bench/bench_training.py [--frames 60] [--epochs 6] [--members 3] [--parallel 2]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path

from mlipflow.data import Dataset
from mlipflow.settings import load_settings
from mlipflow.storage import get_stores
from mlipflow.training.committee import train_committee
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.synthetic import make_toy_frames
from mlipflow.training.trainer import train_model

logger = logging.getLogger("bench_training")
RESULTS = Path(__file__).resolve().parent / "results" / "training.json"
SIZES = {
    "tiny (16 ch, L=0, 2 layers, r 4 Å)": MaceHyperParams.tiny(),
    "small (32 ch, L=1, 2 layers, r 5 Å)": MaceHyperParams.tiny(num_channels=32, max_L=1, max_ell=2, correlation=3,
                                                                  r_max=5.0, num_radial_basis=8),
}
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) INFO: (Initial|Epoch (\d+)):")


def epoch_seconds(log_path: Path) -> float:
    """Seconds between mace-torch's initial validation and its last epoch line (the training epochs only)."""
    stamps = []
    for line in log_path.read_text(errors="replace").splitlines():
        m = _STAMP.match(line)
        if m:
            stamps.append(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f"))
    return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else float("nan")


def fresh_stores(root: Path, tag: str):
    return get_stores(load_settings(home=root / tag))


def make_version(stores, n_frames: int, seed: int = 1) -> str:
    dataset = Dataset(stores)
    frames = make_toy_frames(n_frames, "Li2O", seed=seed)
    dataset.add_frames(frames)
    return dataset.create_version("bench", frame_ids=[f.content_hash for f in frames],
                                  fractions={"train": 0.8, "valid": 0.2}).id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out: dict = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": 1,
                    "load_average_at_start": os.getloadavg()},
        "data": f"{args.frames} toy Morse-labeled Li2O frames (12 atoms each), 80/20 train/valid",
        "epochs": args.epochs,
        "throughput": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for label, hp in SIZES.items():
            stores = fresh_stores(root, f"size-{len(out['throughput'])}")
            version = make_version(stores, args.frames)
            hp = hp.with_updates(max_num_epochs=args.epochs)
            t0 = time.perf_counter()
            record = train_model(stores, version, hp, name="bench", evaluate_splits=("valid",))
            wall = time.perf_counter() - t0
            n_train = record.extra["counts"]["train"]
            epochs_s = epoch_seconds(Path(record.extra["run_dir"]) / "mace_stdout.log")
            out["throughput"][label] = {
                "train_frames": n_train,
                "epochs": args.epochs,
                "epoch_wall_s": round(epochs_s, 2),
                "frames_x_epochs_per_s_epochs_only": round(n_train * args.epochs / epochs_s, 2),
                "total_wall_s": round(wall, 1),
                "frames_x_epochs_per_s_including_startup": round(n_train * args.epochs / wall, 2),
                "valid_rmse_f_meV_A": round(1e3 * record.errors["valid"]["all"]["rmse_f"], 1),
            }
            logger.info("%s: %s", label, out["throughput"][label])
        hp = SIZES[next(iter(SIZES))].with_updates(max_num_epochs=args.epochs)
        stores = fresh_stores(root, "singles")
        version = make_version(stores, args.frames)
        t0 = time.perf_counter()
        for i in range(args.members):
            train_model(stores, version, hp.with_updates(seed=100 + i), name="single", evaluate_splits=("valid",))
        singles = time.perf_counter() - t0
        stores = fresh_stores(root, "committee")
        version = make_version(stores, args.frames)
        t0 = time.perf_counter()
        train_committee(stores, version, hp.with_updates(seed=100), n_models=args.members, parallel=args.parallel,
                        evaluate_splits=("valid",))
        committee = time.perf_counter() - t0
        out["committee"] = {
            "members": args.members,
            "parallel_children": args.parallel,
            "model": next(iter(SIZES)),
            "n_single_trainings_sequential_s": round(singles, 1),
            "committee_parallel_s": round(committee, 1),
            "speedup": round(singles / committee, 2),
        }
        logger.info("committee: %s", out["committee"])
    out["machine"]["load_average_at_end"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    logger.info("wrote %s", RESULTS)


if __name__ == "__main__":
    main()
