"""What running a campaign through the LaunchPad (``mlipflow run`` since issue 18) costs against jobflow.run_locally.

Runs the 2-iteration toy campaign (Li2O cells, the toy-morse surrogate, a committee of 2 tiny MACE models)
twice on fresh embedded stores: once with ``jobflow.run_locally`` (how ``mlipflow run`` ran before) and once
with :func:`mlipflow.execution.run_here` (a workflow on the LaunchPad, fireworks run by a worker in the same
process).  For each, per iteration: wall time, the stages' own timings and the rest (orchestration, read as
in ``bench_campaign.py``); the difference of the orchestration times is the LaunchPad's price.  The two
modes alternate (run_here, run_locally, run_locally, run_here) after a discarded warm-up run, because the
machine is shared and the first run pays the imports.  Then the same for a chain of trivial jobs with
campaign metadata: the price per job without any work in it.  Writes ``bench/results/launchpad_run.json``.
Run: ``python bench/bench_launchpad_run.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_campaign import SPEC, per_iteration
from common import write_result
from jobflow import Flow, job

N_TRIVIAL = 40


@job
def trivial(i: int, previous: object = None) -> dict:
    """A job that does nothing (the price of running a job, not of its work)."""
    return {"i": i}


def _trivial_flow():
    import bench_launchpad_run as me  # the jobs must name an importable module, not __main__

    jobs = []
    for i in range(N_TRIVIAL):
        jobs.append(me.trivial(i, jobs[-1].output if jobs else None))
        jobs[-1].update_metadata({"iteration": i // 10, "stage": "label"})
    flow = Flow(jobs, name="trivial")
    flow.update_metadata({"campaign": "trivial"})
    return flow


def _trivial(mode: str) -> float:
    """Seconds per trivial job, run with ``mode``."""
    with tempfile.TemporaryDirectory() as home:
        os.environ["MLIPFLOW_HOME"] = home
        from mlipflow.execution import run_here, run_locally
        from mlipflow.settings import load_settings
        from mlipflow.storage import get_stores

        stores = get_stores(load_settings())
        flow = _trivial_flow()
        t0 = time.perf_counter()
        if mode == "run_locally":
            run_locally(flow, stores, root_dir=Path(home) / "runs")
        else:
            run_here(flow, stores, campaign="trivial", spec={}, root_dir=Path(home) / "launches")
        return (time.perf_counter() - t0) / N_TRIVIAL


def _one(mode: str) -> dict:
    with tempfile.TemporaryDirectory() as home:
        os.environ["MLIPFLOW_HOME"] = home
        from mlipflow.campaign.loop import campaign_from_spec
        from mlipflow.campaign.spec import CampaignSpec
        from mlipflow.execution import run_here, run_locally
        from mlipflow.settings import load_settings
        from mlipflow.storage import get_stores

        stores = get_stores(load_settings())
        spec = CampaignSpec(**SPEC)
        flow = campaign_from_spec(spec).make()
        start = datetime.now(UTC)
        t0 = time.perf_counter()
        if mode == "run_locally":
            run_locally(flow, stores, root_dir=Path(home) / "runs")
        else:
            run_here(flow, stores, campaign=spec.name, spec=spec.model_dump(mode="json"),
                     root_dir=Path(home) / "launches")
        wall = time.perf_counter() - t0
        iterations = per_iteration(stores, spec.name, start)
        doc = stores.campaigns.find_one({"_id": spec.name})
        fireworks = stores.launchpad.fireworks.count_documents({})
        return {"wall_s": round(wall, 1), "per_iteration": iterations, "state": doc["state"],
                "jobs": sum(it["jobs"] for it in iterations), "fireworks": fireworks}


def main() -> dict:
    _one("run_here")  # warm-up: imports, caches
    runs: dict[str, list[dict]] = {"run_locally": [], "run_here": []}
    for mode in ("run_here", "run_locally", "run_locally", "run_here"):
        runs[mode].append(_one(mode))
    price = []
    for k, local_iteration in enumerate(runs["run_locally"][0]["per_iteration"]):
        jobs = local_iteration["jobs"]
        local = [r["per_iteration"][k]["orchestration_s"] for r in runs["run_locally"]]
        here = [r["per_iteration"][k]["orchestration_s"] for r in runs["run_here"]]
        extra = sum(here) / len(here) - sum(local) / len(local)
        price.append({"iteration": k, "jobs": jobs, "orchestration_run_locally_s": local,
                      "orchestration_run_here_s": here, "launchpad_extra_mean_s": round(extra, 2)})
    trivial_ms = {mode: [] for mode in ("run_locally", "run_here")}
    for mode in ("run_here", "run_locally", "run_locally", "run_here"):
        trivial_ms[mode].append(round(1e3 * _trivial(mode), 1))
    return {"campaign_runs": runs, "launchpad_price_per_iteration": price,
            "trivial_job_ms": trivial_ms, "trivial_jobs": N_TRIVIAL}


if __name__ == "__main__":
    result = main()
    print(result["launchpad_price_per_iteration"], result["trivial_job_ms"])
    write_result("launchpad_run", {"description": __doc__.strip().splitlines()[0], "results": result})
