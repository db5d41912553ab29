"""Running a campaign in this process (``mlipflow run``, ``mlipflow resume``, the nightly pass).

The campaign document records who runs it (host, pid, start), so that ``mlipflow status`` can tell a
campaign that is advancing from one that was interrupted, and the nightly pass never resumes a campaign
that a live process is still running.  Running the same campaign again is resuming it: the label ledger
reuses every finished label, the model registry every finished training, and the sampling-run record every
finished committee MD.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlipflow._process import pid_alive
from mlipflow.campaign.loop import campaign_from_spec
from mlipflow.campaign.spec import CampaignSpec
from mlipflow.errors import ConfigError
from mlipflow.storage import Stores


def runner_alive(doc: dict[str, Any]) -> bool | None:
    """Whether the process recorded as running this campaign is alive (``None``: another host, unknown)."""
    runner = doc.get("runner")
    if not runner:
        return False
    if runner.get("host") != socket.gethostname():
        return None
    return pid_alive(int(runner.get("pid", -1)))


def runner_gone(stores: Stores, doc: dict[str, Any], expiration_secs: float) -> bool:
    """Whether nobody is running this ``running`` campaign any more.

    A runner on this host is checked by its pid.  A runner on another host cannot be checked: it counts as
    gone once neither it started nor any job of the campaign finished for ``expiration_secs``.
    """
    from mlipflow.campaign.status import last_finished_job

    alive = runner_alive(doc)
    if alive is not None:
        return not alive
    last = last_finished_job(stores, doc["_id"])
    stamps = [str(doc.get("runner", {}).get("since") or ""), str((last or {}).get("completed_at") or "")]
    latest = max((datetime.fromisoformat(t) for t in stamps if t), default=None)
    if latest is None:
        return True
    if latest.tzinfo is None:
        latest = latest.replace(tzinfo=UTC)  # jobflow writes UTC without a zone
    return (datetime.now(UTC) - latest).total_seconds() > expiration_secs


def run_campaign(stores: Stores, spec: CampaignSpec, root_dir: str | Path | None = None) -> dict[str, Any]:
    """Run (or resume) ``spec`` here until it stops; return the campaign document.

    Raises
    ------
    ConfigError
        When another live process on this host is running the same campaign.
    """
    from mlipflow.execution import run_here

    doc = stores.campaigns.find_one({"_id": spec.name}) or {}
    if doc.get("state") == "running" and runner_alive(doc) and doc["runner"]["pid"] != os.getpid():
        raise ConfigError(f"campaign {spec.name} is already running here (pid {doc['runner']['pid']}); "
                          "wait for it or stop it first")
    flow = campaign_from_spec(spec).make()
    runner = {"host": socket.gethostname(), "pid": os.getpid(), "since": datetime.now(UTC).isoformat()}
    stores.campaigns.update_one({"_id": spec.name}, {"$set": {"runner": runner},
                                                        "$setOnInsert": {"name": spec.name, "iterations": []}},
                                 upsert=True)
    try:
        run_here(flow, stores, campaign=spec.name, spec=spec.model_dump(mode="json"), root_dir=root_dir)
    finally:
        stores.campaigns.update_one({"_id": spec.name, "runner.pid": runner["pid"]}, {"$unset": {"runner": ""}})
    return stores.campaigns.find_one({"_id": spec.name}) or {}


def resume_campaign(stores: Stores, name: str, root_dir: str | Path | None = None) -> dict[str, Any]:
    """Resume a stored campaign by name from its stored spec (finished work is reused, not recomputed)."""
    doc = stores.campaigns.find_one({"_id": name})
    if not doc or not doc.get("spec"):
        raise ConfigError(f"no campaign {name!r} with a stored spec in {stores.describe()} (see `mlipflow status`)")
    return run_campaign(stores, CampaignSpec(**doc["spec"]), root_dir=root_dir)
