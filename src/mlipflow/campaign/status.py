"""What a campaign is doing: ``mlipflow status`` (and the nightly summary) read it from here.

Every job of a campaign carries ``campaign``, ``iteration`` and ``stage`` in its metadata (jobflow copies
metadata into the JobStore document of a finished job and into the firework spec of a submitted one), so
the last finished stage and the queued work are found without any bookkeeping of our own.
"""

from __future__ import annotations

from typing import Any

from mlipflow.campaign.runner import failure_advice, runner_alive
from mlipflow.storage import Stores

STOPPED = ("converged", "max_iterations", "label_budget")
_FIRST = ("start", "structures", "label", "reference_md", "dataset", "train")
_LATER = ("explore", "select", "decide", "pick", "label", "assess", "dataset", "train")
_QUEUED = ("READY", "WAITING", "RESERVED", "RUNNING")


def next_stage(iteration: int, stage: str) -> tuple[int, str]:
    """The stage that follows ``stage`` of ``iteration`` (iteration 0 labels and trains; k >= 1 also explores)."""
    order = _FIRST if iteration == 0 else _LATER
    if stage not in order or stage == order[-1]:
        return iteration + 1, "explore"
    return iteration, order[order.index(stage) + 1]


def last_finished_job(stores: Stores, name: str) -> dict[str, Any] | None:
    """The campaign's job that finished last (name, metadata, ``completed_at``), planning jobs left out."""
    docs = stores.jobstore.query({"metadata.campaign": name, "metadata.stage": {"$exists": True}},
                                 properties=["name", "metadata", "completed_at"], sort={"completed_at": -1})
    for doc in docs:  # a job that only planned its stage (see campaign.loop._plans) says nothing
        if not doc["metadata"].get("plans") or doc["name"] == "store_inputs":
            return doc
    return None


def stage_seconds(stores: Stores, name: str) -> list[dict[str, Any]]:
    """Wall time per iteration and stage of a campaign run in one process (s), from the jobs' completion times.

    Jobs of a local run finish one after the other, so a job took the time since the previous one finished;
    the first job's start is unknown and it counts from itself.  Rows: ``iteration``, ``stage``, ``seconds``,
    ``jobs``, in the order the stages first finished.
    """
    from datetime import datetime

    docs = stores.jobstore.query({"metadata.campaign": name, "metadata.stage": {"$exists": True}},
                                 properties=["metadata", "completed_at"], sort={"completed_at": 1})
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    previous = None
    for doc in docs:
        when = datetime.fromisoformat(str(doc["completed_at"]))
        took = 0.0 if previous is None else max(0.0, (when - previous).total_seconds())
        previous = when
        key = (int(doc["metadata"].get("iteration", 0)), str(doc["metadata"].get("stage")))
        row = rows.setdefault(key, {"iteration": key[0], "stage": key[1], "seconds": 0.0, "jobs": 0})
        row["seconds"] += took
        row["jobs"] += 1
    return [{**r, "seconds": round(r["seconds"], 1)} for r in rows.values()]


def _run_here(stores: Stores, name: str) -> bool:
    """Whether the campaign's workflow is run by a process of its own (``mlipflow run``), not by workers."""
    from mlipflow.execution import HERE_KEY, campaign_workflow

    wf = campaign_workflow(stores.launchpad, name)
    return bool(wf and (wf.get("metadata") or {}).get(HERE_KEY))


def _fireworks(stores: Stores, name: str) -> tuple[dict[str, int], dict[str, int], list[dict[str, Any]]]:
    fireworks = stores.launchpad.fireworks
    by_state: dict[str, int] = {}
    ready_by_category: dict[str, int] = {}
    failed = []
    for fw in fireworks.find({"spec.campaign": name, "state": {"$ne": "ARCHIVED"}},
                             {"state": 1, "name": 1, "fw_id": 1, "spec._category": 1}):
        by_state[fw["state"]] = by_state.get(fw["state"], 0) + 1
        if fw["state"] == "READY":
            category = str(fw.get("spec", {}).get("_category") or "any")
            ready_by_category[category] = ready_by_category.get(category, 0) + 1
        if fw["state"] == "FIZZLED":
            failed.append({"job": fw["name"], "fw_id": fw["fw_id"]})
    return by_state, ready_by_category, failed


def campaign_status(stores: Stores, name: str) -> dict[str, Any]:
    """Status of one campaign as a plain document.

    Keys: ``state``, ``runner`` (host/pid of a local run and whether it is alive), ``iteration`` and
    ``stage`` (the last finished step), ``labels`` (frames by ledger status: labeled, running, pending,
    failed, filtered), ``jobs`` (its fireworks by state, if submitted), ``by_family`` (accurate, candidate and
    failed ratios of the latest exploration per structure family; ``by_temperature`` the same per family and
    sampled temperature), ``errors`` (latest failed labels and
    jobs), ``iterations`` (the stored per-iteration records), ``next`` (what happens next, in words) and
    ``failure`` (reason, job, iteration and stage of a ``failed`` campaign).
    """
    doc = stores.campaigns.find_one({"_id": name})
    if doc is None:
        return {"name": name, "state": None, "next": f"no campaign {name!r} in {stores.describe()}"}
    state = doc.get("state")
    labels: dict[str, int] = {}
    for row in stores.frames.aggregate([{"$match": {"provenance.campaign": name}},
                                        {"$group": {"_id": "$status", "n": {"$sum": 1}}}]):
        labels[str(row["_id"])] = int(row["n"])
    errors = [{"frame": f["_id"], "iteration": (f.get("provenance") or {}).get("iteration"),
               "reason": (f.get("failure") or "")[:200]}
              for f in stores.frames.find({"provenance.campaign": name, "status": "failed"},
                                          {"failure": 1, "provenance.iteration": 1}).limit(3)]
    jobs, ready, failed_jobs = _fireworks(stores, name)
    errors += failed_jobs[:3]
    last = last_finished_job(stores, name)
    iteration = int(last["metadata"].get("iteration", 0)) if last else 0
    stage = str(last["metadata"].get("stage")) if last else None
    records = doc.get("iterations") or []
    alive = runner_alive(doc)
    if state in STOPPED and not _benchmark_pending(doc):
        nxt = f"nothing: the campaign stopped ({state}); `mlipflow report {name}` writes its report"
    elif state == "failed" and not alive:
        nxt = f"nothing until the input is fixed: {failure_advice(doc)}"
    elif state in STOPPED:
        nxt = (f"the campaign stopped ({state}); its benchmark stage has not finished: `mlipflow resume {name}` "
               "(or the nightly run) completes it")
    elif stage is None:
        nxt = "starting: no step has finished yet"
    else:
        if stage == "decide" and records and records[-1]["iteration"] == iteration \
                and records[-1]["decision"]["decision"] != "continue":
            following = "nothing"
        else:
            k, step = next_stage(iteration, stage)
            following = f"{step} (iteration {k})"
        queued = sum(jobs.get(s, 0) for s in _QUEUED)
        if alive:
            nxt = f"running in pid {doc['runner']['pid']}; next: {following}"
        elif alive is None:
            nxt = f"running on host {doc['runner']['host']}; next: {following}"
        elif queued and not _run_here(stores, name):  # submitted: its workers advance it
            waiting = ", ".join(f"{c}: {n}" for c, n in sorted(ready.items())) or "none"
            nxt = (f"{queued} jobs on the LaunchPad ({jobs.get('RUNNING', 0)} running; ready by worker category: "
                   f"{waiting}); next: {following}")
        else:
            nxt = f"interrupted; `mlipflow resume {name}` (or the nightly run) goes on with {following}"
    return {
        "name": name, "state": state, "runner": {**(doc.get("runner") or {}), "alive": alive},
        "iteration": iteration, "stage": stage, "labels": labels, "jobs": jobs,
        "by_family": records[-1].get("by_family", {}) if records else {},
        "by_temperature": records[-1].get("by_temperature", {}) if records else {},
        "errors": errors, "iterations": records, "next": nxt, "failure": doc.get("failure"),
        "benchmark": doc.get("benchmark"),
    }


def _benchmark_pending(doc: dict[str, Any]) -> bool:
    """Whether the campaign's spec asks for a benchmark stage that has not stored its result."""
    spec = doc.get("spec") or {}
    return bool((spec.get("benchmark") or {}).get("enabled", False)) and not doc.get("benchmark")
