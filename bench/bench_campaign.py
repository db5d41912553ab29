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
import yaml
from common import write_result

SPEC = {**yaml.safe_load((Path(__file__).resolve().parents[1] / "flows" / "campaign_toy.yaml").read_text()),
        "name": "bench"}


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
