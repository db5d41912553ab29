"""The nightly controller: one idempotent pass that keeps every campaign moving.

Safe from cron or a systemd timer (``deploy/``): it takes an exclusive, non-blocking lock on
``MLIPFLOW_HOME/nightly.lock``; a second run while one is going exits at once with a message.  A pass:

1. detects lost runs (FireWorks' ``detect_lostruns``: a RUNNING firework whose worker stopped pinging)
   and reruns them;
2. reruns FIZZLED fireworks that have failed fewer than ``max_reruns`` times (kept as they are beyond);
3. optionally runs a local worker for a bounded number of launches (embedded store, or a workstation);
4. writes a short summary of what changed since the previous pass (text and JSON) into
   ``MLIPFLOW_HOME/nightly/``: fireworks by state, frames by status, dataset versions, models.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlipflow.errors import MlipflowError
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)


class NightlyAlreadyRunningError(MlipflowError):
    """Another nightly pass holds the lock."""


@contextmanager
def nightly_lock(home: Path) -> Iterator[Path]:
    """Hold ``home/nightly.lock`` exclusively, or raise :class:`NightlyAlreadyRunningError` at once."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "nightly.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "unknown process"
            raise NightlyAlreadyRunningError(
                f"another `mlipflow nightly` is running ({holder}); this one exits without doing anything"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC".encode())
        yield path
    finally:
        os.close(fd)


def snapshot(stores: Stores) -> dict[str, Any]:
    """Counts that a nightly summary compares between passes."""
    lp = stores.launchpad
    fw_states = Counter(d["state"] for d in lp.fireworks.find({}, {"state": 1}))
    frame_states = Counter(d.get("status", "labeled") for d in stores.frames.find({}, {"status": 1}))
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "fireworks": dict(fw_states),
        "frames": dict(frame_states),
        "dataset_versions": stores.datasets.count_documents({}),
        "models": stores.models.count_documents({}),
        "campaigns": {d.get("name", str(d["_id"])): d.get("state") for d in stores.campaigns.find({})},
    }


def _diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    if before is None:
        return ["first nightly pass: no earlier summary to compare with"]
    lines = []
    for key in ("fireworks", "frames"):
        for state in sorted(set(before.get(key, {})) | set(after[key])):
            old, new = before.get(key, {}).get(state, 0), after[key].get(state, 0)
            if old != new:
                lines.append(f"{key} {state}: {old} -> {new} ({new - old:+d})")
    for key in ("dataset_versions", "models"):
        if before.get(key, 0) != after[key]:
            lines.append(f"{key}: {before.get(key, 0)} -> {after[key]}")
    for name, state in after["campaigns"].items():
        if before.get("campaigns", {}).get(name) != state:
            lines.append(f"campaign {name}: {before.get('campaigns', {}).get(name)} -> {state}")
    return lines or ["nothing changed since the last pass"]


def run_nightly(
    stores: Stores,
    *,
    max_reruns: int = 2,
    expiration_secs: int = 4 * 3600,
    worker_launches: int = 0,
    resume_campaigns: bool = True,
) -> dict[str, Any]:
    """One nightly pass under the lock; return the summary (also written to ``home/nightly/``).

    Parameters
    ----------
    stores
        The stores of the installation.
    max_reruns
        A FIZZLED firework is rerun while it has failed fewer times than this.
    expiration_secs
        A RUNNING firework that has not pinged for this long (s) is a lost run.
    worker_launches
        Run up to this many fireworks with a local worker after the maintenance (0: none).
    resume_campaigns
        Resume, in this process, every campaign left ``running`` that has no firework waiting on the
        LaunchPad (a campaign run locally and interrupted); finished labels and trainings are reused.

    Raises
    ------
    NightlyAlreadyRunningError
        When another pass holds the lock.
    """
    home = stores.settings.home
    out_dir = home / "nightly"
    with nightly_lock(home):
        out_dir.mkdir(parents=True, exist_ok=True)
        last_path = out_dir / "last.json"
        before = json.loads(last_path.read_text())["after"] if last_path.exists() else None
        lp = stores.launchpad
        # a worker killed inside FireWorks' workflow lock (held for milliseconds around each state change)
        # leaves its workflow locked; FireWorks would wait WFLOCK_EXPIRATION_SECS and then refuse.  The
        # workflow of a lost run has no live writer, so its lock is released first.
        _, lost_fws, _ = lp.detect_lostruns(expiration_secs=expiration_secs)
        stale = lp.workflows.update_many({"nodes": {"$in": lost_fws}, "locked": True}, {"$unset": {"locked": ""}})
        if stale.modified_count:
            logger.warning("nightly: released %d workflow lock(s) left by lost runs", stale.modified_count)
        lost_launches, lost_fws, _ = lp.detect_lostruns(expiration_secs=expiration_secs, rerun=True)
        rerun, kept_failed = [], []
        for fw in lp.fireworks.find({"state": "FIZZLED"}, {"fw_id": 1, "launches": 1, "archived_launches": 1}):
            # a rerun archives the earlier launches: count both to know how often it has failed
            n_failed = len(fw.get("launches", [])) + len(fw.get("archived_launches", []))
            if n_failed < max_reruns:
                lp.rerun_fw(fw["fw_id"])
                rerun.append(fw["fw_id"])
            else:
                kept_failed.append(fw["fw_id"])
        if worker_launches > 0:
            from mlipflow.execution import run_worker

            run_worker(nlaunches=worker_launches, max_loops=1, sleep_time=1, settings=stores.settings,
                       launchpad=lp)
        resumed = []
        if resume_campaigns:
            resumed = _resume_local_campaigns(stores, expiration_secs)
        after = snapshot(stores)
        summary = {
            "campaigns_resumed": resumed,
            "time": after["time"],
            "lost_runs_rerun": sorted(set(lost_fws)),
            "lost_launches": list(lost_launches),
            "failed_rerun": rerun,
            "failed_kept": kept_failed,
            "changes": _diff(before, after),
            "before": before,
            "after": after,
        }
        stamp = after["time"].replace(":", "").replace("-", "")
        (out_dir / f"summary-{stamp}.json").write_text(json.dumps(summary, indent=2, default=str))
        text = [f"mlipflow nightly {after['time']} on {stores.describe()}"]
        text += [f"lost runs rerun: {summary['lost_runs_rerun'] or 'none'}",
                 f"failed jobs rerun: {rerun or 'none'}; failed beyond {max_reruns} tries: {kept_failed or 'none'}"]
        text += [f"campaigns resumed: {resumed or 'none'}"]
        text += ["changes:"] + [f"  {line}" for line in summary["changes"]]
        (out_dir / f"summary-{stamp}.txt").write_text("\n".join(text) + "\n")
        last_path.write_text(json.dumps(summary, indent=2, default=str))
        summary["text"] = "\n".join(text)
        return summary


def _resume_local_campaigns(stores: Stores, expiration_secs: float) -> list[str]:
    """Resume campaigns that are ``running`` and that nobody runs: those ``mlipflow run`` ran whose process has
    stopped, and submitted ones with nothing left queued on the LaunchPad (their workers advance the others)."""
    from mlipflow.campaign.runner import CampaignBusyError, resume_campaign, runner_gone
    from mlipflow.execution import HERE_KEY, campaign_workflow

    resumed = []
    for doc in stores.campaigns.find({"state": "running", "spec": {"$ne": None}}):
        workflow = campaign_workflow(stores.launchpad, doc["_id"])
        run_here = workflow is None or bool((workflow.get("metadata") or {}).get(HERE_KEY))
        queued = stores.launchpad.fireworks.count_documents(
            {"spec.campaign": doc["_id"], "state": {"$in": ["READY", "WAITING", "RESERVED", "RUNNING"]}})
        if queued and not run_here:
            continue  # submitted: it advances through its workers
        if not runner_gone(stores, doc, expiration_secs):
            logger.info("nightly: campaign %s is being run by %s; not resumed", doc["_id"], doc.get("runner"))
            continue
        logger.info("nightly: resuming campaign %s", doc["_id"])
        try:
            resume_campaign(stores, doc["_id"])
        except CampaignBusyError as exc:  # another process claimed it since it was looked at
            logger.info("nightly: campaign %s not resumed: %s", doc["_id"], exc)
            continue
        resumed.append(doc["_id"])
    return resumed
