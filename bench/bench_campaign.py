"""Orchestration overhead of a campaign: wall time not spent labeling, training, in MD or selecting.

Runs a small 2-iteration campaign (Li2O cells, the toy-morse surrogate, a committee of 2 tiny MACE models)
locally on a fresh embedded store and splits the wall time of every iteration (read from the jobs' metadata
and completion times) into the stages' own timings (label batches, training runs, MD walkers, selection)
and the rest (jobflow, the store, structure building, bookkeeping).  Then runs the finished campaign again
and times that no-op resume (every label, training, MD and selection is replayed from the stores).
Writes ``bench/results/campaign.json``.  Run: ``python bench/bench_campaign.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import yaml
from common import write_result

SPEC = {**yaml.safe_load((Path(__file__).resolve().parents[1] / "flows" / "campaign_toy.yaml").read_text()),
        "name": "bench"}


def _seconds(output: dict, name: str, stage: str) -> tuple[str, float] | None:
    """(stage, seconds of real work) of one finished job, from its own output."""
    output = output or {}
    if stage == "label" and "batch" in name:
        return "labeling", float(output.get("seconds", 0.0))
    if stage == "train" and name.startswith("mace train"):
        return "training", float(output.get("wall_time") or 0.0)
    if stage == "explore":
        return "md", sum(float(w.get("seconds", 0.0)) for w in output.get("walkers") or [])
    if stage == "select":
        return "selection", float(output.get("seconds", 0.0))
    return None


def per_iteration(stores, name: str, start: datetime) -> list[dict]:
    """Wall time of each iteration (between the last jobs of consecutive iterations) and its split."""
    docs = sorted(stores.jobstore.query({"metadata.campaign": name},
                                        properties=["output", "name", "metadata", "completed_at"]),
                  key=lambda d: d["completed_at"])
    rows: dict[int, dict] = {}
    for d in docs:
        k = int(d["metadata"].get("iteration", 0))
        row = rows.setdefault(k, {"iteration": k, "jobs": 0, "labeling": 0.0, "training": 0.0, "md": 0.0,
                                  "selection": 0.0, "end": d["completed_at"]})
        row["jobs"] += 1
        row["end"] = max(row["end"], d["completed_at"])
        part = _seconds(d.get("output"), str(d.get("name", "")), str(d["metadata"].get("stage")))
        if part:
            row[part[0]] += part[1]
    out, previous = [], start
    for k in sorted(rows):
        row = rows[k]
        end = datetime.fromisoformat(str(row.pop("end"))).replace(tzinfo=UTC)
        wall = (end - previous).total_seconds()
        previous = end
        work = row["labeling"] + row["training"] + row["md"] + row["selection"]
        out.append({**{key: round(v, 2) if isinstance(v, float) else v for key, v in row.items()},
                    "wall_s": round(wall, 2), "orchestration_s": round(wall - work, 2),
                    "orchestration_fraction": round((wall - work) / wall, 3) if wall > 0 else None})
    return out


def main() -> dict:
    with tempfile.TemporaryDirectory() as home:
        os.environ["MLIPFLOW_HOME"] = home
        from mlipflow.campaign.runner import run_campaign
        from mlipflow.campaign.spec import CampaignSpec
        from mlipflow.storage import get_stores

        stores = get_stores()
        start = datetime.now(UTC)
        t0 = time.perf_counter()
        doc = run_campaign(stores, CampaignSpec(**SPEC), root_dir=Path(home) / "runs")
        wall = time.perf_counter() - t0
        iterations = per_iteration(stores, "bench", start)
        t0 = time.perf_counter()  # the same campaign again: everything is replayed from the stores
        run_campaign(stores, CampaignSpec(**SPEC), root_dir=Path(home) / "runs")
        replay = time.perf_counter() - t0
        work = sum(it[k] for it in iterations for k in ("labeling", "training", "md", "selection"))
        return {
            "wall_s": round(wall, 1),
            "orchestration_s": round(wall - work, 1),
            "orchestration_fraction": round((wall - work) / wall, 3),
            "per_iteration": iterations,
            "resume_of_finished_campaign_s": round(replay, 1),
            "iterations": len(doc["iterations"]),
            "state": doc["state"],
        }


if __name__ == "__main__":
    result = main()
    print(result)
    write_result("campaign", {"description": __doc__.strip().splitlines()[0], "results": result})
