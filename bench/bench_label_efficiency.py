"""Label efficiency of the Li2O campaign's selection against random, diversity-only and uncertainty-only picks.

Writes ``bench/results/label_efficiency.json``.  System, labeler, trainer and selection settings: the campaign file
``flows/campaign_li2o.yaml`` (bulk Li2O, 96 atoms, and a Σ5 grain boundary, 120 atoms, at 300 and 900 K).  Pool
and test set: the cached CHGNet reference MD of :mod:`li2o_reference` (the same exploration cells and sampled
temperatures as the campaign file; the test set from other walkers with other seeds, never in the pool).  The
labels are CHGNet's: a surrogate, not DFT.  Each strategy trains one MACE per budget step and seed with the
campaign's tiny() hyper-parameters (``--epochs`` epochs); ``uncertainty`` and ``campaign`` retrain a committee of
two at every step.  The default (3 seeds, budgets 4/8/16, 20 epochs) takes about 30-45 min on 2 cores.

Usage: ``python bench/bench_label_efficiency.py [--seeds 0 1 2] [--budgets 4 8 16] [--epochs 20] [--parallel 2]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_result
from li2o_reference import reference_frames

from mlipflow.benchmark.efficiency import EfficiencySettings, efficiency_lines, labeler_e0s, run_efficiency
from mlipflow.campaign.spec import load_campaign

logger = logging.getLogger("bench_label_efficiency")
CAMPAIGN = Path(__file__).resolve().parents[1] / "flows" / "campaign_li2o.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--strategies", nargs="+", default=None)
    parser.add_argument("--name", default="label_efficiency")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("jobflow", "fireworks", "mlipflow.training", "mlipflow.data", "mlipflow.storage"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    spec = load_campaign(CAMPAIGN)
    options = {"seeds": args.seeds, "budgets": args.budgets, "parallel": args.parallel,
               "hyperparams": {"max_num_epochs": args.epochs}}
    if args.strategies:
        options["strategies"] = args.strategies
    settings = EfficiencySettings(**options)
    start = time.perf_counter()
    pool = reference_frames("pool")
    test = reference_frames("test", replicas=1, seed=1000)
    e0s = labeler_e0s(spec)
    logger.info("pool %d frames, test %d frames, E0s %s eV", len(pool), len(test), e0s)
    def finish(doc: dict) -> dict:
        doc["source"] = {"campaign_file": "flows/campaign_li2o.yaml",
                         "pool": "li2o_reference pool (CHGNet MD, 2 walkers per cell and temperature, seeds 0..)",
                         "test": "li2o_reference test (CHGNet MD, 1 walker per cell and temperature, seeds 1000..)"}
        doc["description"] = __doc__.split("\n\n")[1].replace("\n", " ")
        doc["total_wall_s"] = time.perf_counter() - start
        return doc

    with tempfile.TemporaryDirectory(prefix="mlipflow-efficiency-") as tmp:
        doc = run_efficiency(spec, pool, test, settings, workdir=Path(tmp), e0s=e0s,
                             on_partial=lambda d: write_result(args.name, finish(d)))
    finish(doc)
    for line in efficiency_lines(doc):
        logger.info("%s", line)
    write_result(args.name, doc)


if __name__ == "__main__":
    main()
