"""Running a campaign in this process (``mlipflow run``, ``mlipflow resume``, the nightly pass).

One process runs a campaign at a time.  Before anything is built or run, the process claims the campaign
with one conditional upsert (:func:`claim_campaign`): it records itself as the campaign's runner (host,
pid, process start, a token) only if no runner is recorded; a second ``run`` or ``resume`` is refused and
told who holds the campaign.  A runner that died (its pid is gone, or on another host it has been silent
for the lost-run time) is replaced with a compare-and-swap on the very record that was seen.  The record
also lets ``mlipflow status`` tell a campaign that is advancing from one that was interrupted, and the
nightly pass never resumes a campaign that a live process is still running.

Running the same campaign again is resuming it: the label ledger reuses every finished label, the model
registry every finished training, and the sampling-run record every finished committee MD.  A job that
fails for a reason that running it again would repeat (a wrong input, see :func:`deterministic_failure`)
marks the campaign ``failed`` with its reason; it is then not resumed until its file is fixed and run.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo.errors import DocumentTooLarge, DuplicateKeyError

from mlipflow._process import pid_alive, process_start
from mlipflow.campaign.loop import campaign_from_spec
from mlipflow.campaign.spec import CampaignSpec
from mlipflow.errors import ConfigError, MlipflowError, StorageError
from mlipflow.storage import Stores
from mlipflow.yamlio import validate_with_lines

logger = logging.getLogger(__name__)

#: a runner on another host that neither started nor finished a job for this long (s) counts as gone
LOST_AFTER = 4 * 3600


class CampaignBusyError(ConfigError):
    """Another live process is running the campaign."""


def runner_alive(doc: dict[str, Any]) -> bool | None:
    """Whether the process recorded as running this campaign is alive (``None``: another host, unknown).

    A pid that now belongs to another process (the recorded process start differs) counts as dead.
    """
    runner = doc.get("runner")
    if not runner:
        return False
    if runner.get("host") != socket.gethostname():
        return None
    pid = int(runner.get("pid", -1))
    if not pid_alive(pid):
        return False
    started = runner.get("started")
    return started is None or process_start(pid) in (None, started)


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


def _holder(runner: dict[str, Any]) -> str:
    where = "here" if runner.get("host") == socket.gethostname() else f"on host {runner.get('host')}"
    since = f", since {runner['since']}" if runner.get("since") else ""
    return f"{where} (pid {runner.get('pid')}{since})"


def claim_campaign(stores: Stores, name: str, expiration_secs: float = LOST_AFTER) -> dict[str, Any]:
    """Make this process the only runner of campaign ``name``; return the runner record.

    One conditional upsert: the runner is set only where none is recorded (a new campaign document is
    created with it), so of any number of processes claiming at once exactly one wins.  A recorded runner
    that is gone (:func:`runner_gone`) is replaced only if the record is still the one that was seen.

    Raises
    ------
    CampaignBusyError
        When a live process (or, on another host, one that is not yet silent for ``expiration_secs``)
        holds the campaign; the message names it.
    """
    runner = {"host": socket.gethostname(), "pid": os.getpid(), "started": process_start(os.getpid()),
              "since": datetime.now(UTC).isoformat(), "token": uuid.uuid4().hex}
    campaigns = stores.campaigns
    for _ in range(10):
        try:
            campaigns.find_one_and_update({"_id": name, "runner": None},
                                          {"$set": {"runner": runner},
                                           "$setOnInsert": {"name": name, "iterations": []}}, upsert=True)
            return runner
        except DuplicateKeyError:  # the document exists and names a runner
            pass
        doc = campaigns.find_one({"_id": name})
        held = (doc or {}).get("runner")
        if not held:
            continue  # released in the meantime: claim again
        if not runner_gone(stores, doc, expiration_secs):
            raise CampaignBusyError(
                f"campaign {name} is already running {_holder(held)}; wait for it to finish, or stop it "
                f"first (`kill {held.get('pid')}` on {held.get('host')})")
        if campaigns.update_one({"_id": name, "runner": held}, {"$set": {"runner": runner}}).modified_count:
            logger.warning("campaign %s: its runner %s is gone; this process takes over", name, _holder(held))
            return runner
    raise CampaignBusyError(f"campaign {name}: other processes keep claiming it; try again later")


def queued_fireworks(stores: Stores, name: str) -> int:
    """How many fireworks of campaign ``name`` wait or run on the LaunchPad for workers (a submitted campaign).

    The fireworks of the workflow ``mlipflow run`` itself put there (run by its own process) do not count.
    """
    from mlipflow.execution import HERE_KEY

    lp = stores.launchpad
    own = [n for wf in lp.workflows.find({"metadata.campaign": name, f"metadata.{HERE_KEY}": True}, {"nodes": 1})
           for n in wf.get("nodes", [])]
    return lp.fireworks.count_documents({"spec.campaign": name, "fw_id": {"$nin": own},
                                         "state": {"$in": ["READY", "WAITING", "RESERVED", "RUNNING"]}})


def refuse_if_submitted(stores: Stores, name: str) -> None:
    """Raise :class:`CampaignBusyError` when campaign ``name`` is on the LaunchPad: its workers run it."""
    queued = queued_fireworks(stores, name)
    if queued:
        raise CampaignBusyError(f"campaign {name} is submitted: {queued} of its jobs wait or run on the LaunchPad "
                                f"({stores.describe()}); let the workers finish it (`mlipflow worker`), or defuse "
                                "its workflow first (`lpad defuse_wflows`)")


def release_campaign(stores: Stores, name: str, runner: dict[str, Any], forget_unstarted: bool = False) -> None:
    """Remove ``runner`` from the campaign (nothing happens if another process holds it now).

    ``forget_unstarted``: also remove the campaign document if no job ever started it (it only held the claim).
    """
    if forget_unstarted:
        stores.campaigns.delete_one({"_id": name, "runner.token": runner["token"], "state": None, "spec": None})
    stores.campaigns.update_one({"_id": name, "runner.token": runner["token"]}, {"$unset": {"runner": ""}})


def deterministic_failure(exc: BaseException) -> bool:
    """Whether running the failed job again would fail the same way (a wrong input, not the machine).

    mlipflow's own errors (except an unreachable store), wrong values and types, and documents over
    MongoDB's size limit are; an interrupt, a lost connection, a full disk or an out-of-memory are not.
    """
    if isinstance(exc, StorageError):
        return False
    return isinstance(exc, MlipflowError | ValueError | TypeError | LookupError | ArithmeticError | AttributeError
                      | AssertionError | NotImplementedError | DocumentTooLarge)


def _failure(exc: BaseException, job: Any) -> dict[str, Any]:
    metadata = dict(getattr(job, "metadata", None) or {})
    reason = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, MlipflowError):
        reason = f"{type(exc).__name__}: {reason}"
    return {"reason": reason, "job": getattr(job, "name", None), "iteration": metadata.get("iteration"),
            "stage": metadata.get("stage"), "at": datetime.now(UTC).isoformat()}


#: exception classes (by name) whose failure repeats on a rerun: wrong inputs, not the machine
_DETERMINISTIC_NAMES = frozenset({
    "ValueError", "TypeError", "KeyError", "IndexError", "LookupError", "ZeroDivisionError", "ArithmeticError",
    "AttributeError", "AssertionError", "NotImplementedError", "DocumentTooLarge", "ValidationError",
})


def deterministic_failure_name(qualname: str) -> bool:
    """:func:`deterministic_failure` for an exception known by its (dotted) class name, e.g. from a launch."""
    import importlib

    module, _, name = qualname.rpartition(".")
    if module:
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            cls = None
        if isinstance(cls, type) and issubclass(cls, BaseException):
            try:
                return deterministic_failure(cls.__new__(cls))
            except Exception:
                return issubclass(cls, MlipflowError) and not issubclass(cls, StorageError)
    return name in _DETERMINISTIC_NAMES


def launchpad_failure(stores: Stores, name: str) -> tuple[dict[str, Any], bool]:
    """The failure of the campaign's run-here workflow (reason, job, iteration, stage) and whether it repeats.

    Read from the failed firework's launch: its stack trace ends with ``module.ExceptionClass: message``.
    """
    from mlipflow.execution import campaign_workflow

    lp = stores.launchpad
    wf = campaign_workflow(lp, name) or {}
    fw = lp.fireworks.find_one({"fw_id": {"$in": wf.get("nodes", [])}, "state": "FIZZLED"},
                               {"fw_id": 1, "name": 1, "launches": 1, "spec": 1})
    if fw is None:
        return {"reason": "a job failed", "job": None, "iteration": None, "stage": None,
                "at": datetime.now(UTC).isoformat()}, False
    launch = lp.launches.find_one({"launch_id": (fw.get("launches") or [None])[-1]}, {"action": 1}) or {}
    stored = ((launch.get("action") or {}).get("stored_data") or {})
    trace = str(stored.get("_stacktrace") or stored.get("_exception", {}).get("_stacktrace") or "")
    last = next((ln.strip() for ln in reversed(trace.strip().splitlines()) if ln.strip()), "")
    qualname, _, message = last.partition(": ")
    job = (fw.get("spec") or {}).get("_tasks", [{}])[0].get("job") or {}
    metadata = dict(job.get("metadata") or {}) if isinstance(job, dict) else {}
    reason = message.strip() if qualname.rpartition(".")[0].startswith("mlipflow") else last
    job_name = job.get("name") if isinstance(job, dict) else None
    failure = {"reason": reason or "a job failed", "job": job_name or fw.get("name"),
               "iteration": metadata.get("iteration"),
               "stage": metadata.get("stage"), "at": datetime.now(UTC).isoformat()}
    return failure, bool(qualname) and deterministic_failure_name(qualname)


def run_campaign(stores: Stores, spec: CampaignSpec, root_dir: str | Path | None = None) -> dict[str, Any]:
    """Run (or resume) ``spec`` here until it stops; return the campaign document.

    The first job that fails stops the run.  A deterministic failure (:func:`deterministic_failure`) leaves
    the campaign ``failed``, with ``failure`` = reason, job, iteration and stage; any other leaves it
    ``running``, to be resumed (both are logged).

    Raises
    ------
    CampaignBusyError
        When another live process is running the same campaign, or it is submitted to the LaunchPad.
    """
    from mlipflow.execution import run_here

    runner = claim_campaign(stores, spec.name)
    try:
        try:
            refuse_if_submitted(stores, spec.name)
            flow = campaign_from_spec(spec).make()
        except BaseException:  # nothing ran: leave no trace of a campaign that never started
            release_campaign(stores, spec.name, runner, forget_unstarted=True)
            raise
        stores.campaigns.update_one({"_id": spec.name}, {"$unset": {"failure": ""}})
        states = run_here(flow, stores, campaign=spec.name, spec=spec.model_dump(mode="json"), root_dir=root_dir)
        if states.get("FIZZLED"):
            failure, deterministic = launchpad_failure(stores, spec.name)
            if not deterministic:  # the campaign stays ``running``: resuming may get further
                logger.error("campaign %s stopped in %s: %s", spec.name, failure["job"], failure["reason"])
            else:
                logger.error("campaign %s failed in %s: %s", spec.name, failure["job"], failure["reason"])
                stores.campaigns.update_one({"_id": spec.name}, {"$set": {"state": "failed", "failure": failure}})
    finally:
        release_campaign(stores, spec.name, runner)
    return stores.campaigns.find_one({"_id": spec.name}) or {}


def resume_campaign(stores: Stores, name: str, root_dir: str | Path | None = None) -> dict[str, Any]:
    """Resume a stored campaign by name from its stored spec (finished work is reused, not recomputed).

    Raises
    ------
    ConfigError
        When there is no such campaign, or it failed for a reason that resuming would repeat.
    """
    doc = stores.campaigns.find_one({"_id": name})
    if not doc or not doc.get("spec"):
        raise ConfigError(f"no campaign {name!r} with a stored spec in {stores.describe()} (see `mlipflow status`)")
    if doc.get("state") == "failed":
        raise ConfigError(f"campaign {name} failed: {failure_advice(doc)}")
    spec = validate_with_lines(doc["spec"], CampaignSpec, f"the stored spec of campaign {name}", {})
    return run_campaign(stores, spec, root_dir=root_dir)


def failure_advice(doc: dict[str, Any]) -> str:
    """What failed in a ``failed`` campaign and what to do about it, in one line."""
    failure = doc.get("failure") or {}
    where = failure.get("job") or "a job"
    if failure.get("stage") is not None:
        where += f" (iteration {failure.get('iteration')}, stage {failure.get('stage')})"
    return (f"{where}: {failure.get('reason', 'unknown reason')}. Resuming would repeat this: change what it "
            f"names in the campaign file, then `mlipflow run FILE` (finished labels and trainings are reused)")
