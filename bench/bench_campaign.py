"""Orchestration overhead of a campaign: wall time not spent labeling, training, in MD or selecting.

Runs a small 2-iteration campaign (Li2O cells, the toy-morse surrogate, a committee of 2 tiny MACE models)
locally on a fresh embedded store and splits its wall time into the stages' own timings (label batches,
training runs, MD walkers, selection) and the rest (jobflow, the store, structure building, bookkeeping).
Writes ``bench/results/campaign.json``.  Run: ``python bench/bench_campaign.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result

CELLS = {"max_atoms": 40, "cutoff": 3.0, "materials": {"Li2O": {"prototype": "Li2O"}}}
SPEC = {
    "name": "bench",
    "splits": {"train": 0.7, "valid": 0.3},
    "structures": {**CELLS, "entries": [
        {"name": "strain", "kind": "strain", "material": "Li2O", "supercell": False,
         "strains": [-0.04, -0.02, 0.0, 0.02, 0.04]},
        {"name": "rattle", "kind": "rattle", "material": "Li2O", "supercell": False, "n_structures": 12,
         "stdev": 0.1, "seed": 1}]},
    "explore": {**CELLS, "entries": [{"name": "explore", "kind": "rattle", "material": "Li2O", "supercell": False,
                                      "n_structures": 1, "stdev": 0.02, "seed": 7}]},
    "labeler": {"kind": "surrogate", "calculator": "toy-morse", "batch_size": 8},
    "trainer": {"committee_size": 2, "hyperparams": {"max_num_epochs": 3, "lr": 0.005}},
    "sampling": {"temperatures": [300.0, 1200.0], "n_steps": 16, "record_every": 4},
    "selection": {"trust": [0.0001, 100.0], "budget": 3, "soap_cutoff": 3.5},
    "convergence": {"accurate_ratio": 0.99, "max_iterations": 2, "label_budget": 500},
}


def main() -> dict:
    with tempfile.TemporaryDirectory() as home:
        os.environ["MLIPFLOW_HOME"] = home
        from mlipflow.campaign.loop import campaign_from_spec
        from mlipflow.campaign.spec import CampaignSpec
        from mlipflow.execution import run_locally
        from mlipflow.storage import get_stores

        stores = get_stores()
        t0 = time.perf_counter()
        run_locally(campaign_from_spec(CampaignSpec(**SPEC)).make(), stores, root_dir=Path(home) / "runs")
        wall = time.perf_counter() - t0
        training = sum(d.get("wall_time") or 0.0 for d in stores.models.find({"kind": "mace"}, {"wall_time": 1}))
        outputs = list(stores.jobstore.query({}, properties=["output", "name"]))
        labeling = sum((o.get("output") or {}).get("seconds", 0.0) for o in outputs
                       if str(o.get("name", "")).startswith("label") and "batch" in str(o.get("name", "")))
        md = sum(w.get("seconds", 0.0) for o in outputs if str(o.get("name", "")).startswith("explore")
                 for w in ((o.get("output") or {}).get("walkers") or []))
        selection = sum((o.get("output") or {}).get("seconds", 0.0) for o in outputs
                        if str(o.get("name", "")).startswith("select"))
        stages = training + labeling + md + selection
        doc = stores.campaigns.find_one({"_id": "bench"})
        return {
            "wall_s": round(wall, 1),
            "stages_s": {"training": round(training, 1), "labeling": round(labeling, 1), "md": round(md, 1),
                         "selection": round(selection, 1)},
            "orchestration_s": round(wall - stages, 1),
            "orchestration_fraction": round((wall - stages) / wall, 3),
            "iterations": len(doc["iterations"]),
            "jobs": len(outputs),
            "state": doc["state"],
        }


if __name__ == "__main__":
    result = main()
    print(result)
    write_result("campaign", {"description": __doc__.strip().splitlines()[0], "results": result})
