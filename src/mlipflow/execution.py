"""Run jobflow flows locally, or submit them to FireWorks and run workers on cpu/gpu categories.

The same flow runs both ways.  Locally it runs in this process on the configured JobStore.  Submitted,
each job becomes a Firework whose ``_category`` says which workers may take it: labeling (DFT) jobs go
to ``cpu`` workers, training and MD to ``gpu`` workers (names from the settings).  A Maker states the
kind of resource a job needs with :func:`set_resource`; jobs that say nothing go to ``cpu``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import jobflow
from fireworks import FWAction, FWorker, LaunchPad, Workflow, explicit_serialize
from fireworks.core.rocket_launcher import launch_rocket, rapidfire
from jobflow import Flow, Job
from jobflow.managers.fireworks import JobFiretask, flow_to_workflow

from mlipflow._process import pid_alive
from mlipflow.settings import MlipflowSettings, load_settings
from mlipflow.storage import Stores, get_stores

logger = logging.getLogger(__name__)

Resource = Literal["cpu", "gpu"]
RESOURCE_KEY = "mlipflow_resource"


def set_resource(job_or_flow: Job | Flow, resource: Resource) -> Job | Flow:
    """Mark a job (or every job of a flow) as needing ``cpu`` or ``gpu`` workers.

    The FireWorks category goes into the job's ``manager_config``, which jobflow copies into the firework's
    spec, also for jobs that a running flow adds later (``Response(addition=...)``).
    """
    settings = load_settings()
    category = settings.gpu_category if resource == "gpu" else settings.cpu_category
    job_or_flow.update_metadata({RESOURCE_KEY: resource}, dynamic=True)
    job_or_flow.update_config({"manager_config": {"_category": category}}, dynamic=True)
    return job_or_flow


def worker_device(requested: str = "auto") -> str:
    """The torch device a job uses on the worker it runs on: ``cuda`` when torch sees a GPU, else ``cpu``.

    ``requested`` ``auto`` follows the worker; ``cpu`` or ``cuda`` are kept as given (``cuda`` without a GPU is an
    error of mace-torch, not silently CPU).
    """
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_locally(flow: Flow | Job, stores: Stores | None = None, root_dir: str | Path | None = None,
                raise_immediately: bool = False) -> dict:
    """Run a flow in this process on the configured JobStore; return jobflow's responses.

    Parameters
    ----------
    flow
        The flow or job.
    stores
        Default: :func:`~mlipflow.storage.get_stores` from the settings.
    root_dir
        Where job directories are made (default ``MLIPFLOW_HOME/runs``).
    raise_immediately
        Let the first error of a job propagate (``jobflow.CURRENT_JOB.job`` is then the failed job) instead
        of logging it and going on with the jobs that do not depend on it.
    """
    stores = stores or get_stores()
    root = Path(root_dir or stores.settings.home / "runs")
    root.mkdir(parents=True, exist_ok=True)
    return jobflow.run_locally(flow, store=stores.jobstore, root_dir=root, create_folders=True, log=True,
                               raise_immediately=raise_immediately)


def firework_name(spec: dict[str, Any], job_name: str) -> str:
    """The firework name of a job: ``toy it1 label: batch 0`` (campaign, iteration, stage from the metadata).

    A job without a campaign keeps its own name; the part of the job name that repeats the iteration or the
    stage is left out (``decide iteration 1`` -> ``toy it1 decide``).
    """
    from mlipflow.campaign.progress import short_job_name

    campaign = spec.get("campaign")
    if not campaign:
        return job_name
    iteration, stage = spec.get("iteration"), spec.get("stage")
    head = " ".join(str(p) for p in (campaign, None if iteration is None else f"it{iteration}", stage) if p is not None)
    rest = short_job_name(job_name, iteration, stage)
    return f"{head}: {rest}" if rest else head


def _prepare_workflow(workflow: Workflow) -> Workflow:
    """Name the fireworks of ``workflow`` after their campaign, iteration and stage; run them with
    :class:`CampaignJobFiretask`, so that the fireworks they add are named the same way."""
    for fw in workflow.fws:
        fw.name = firework_name(fw.spec, fw.name)
        fw.tasks = [CampaignJobFiretask(job=t["job"], store=t.get("store"))
                    if isinstance(t, JobFiretask) and not isinstance(t, CampaignJobFiretask) else t for t in fw.tasks]
    return workflow


@explicit_serialize
class CampaignJobFiretask(JobFiretask):
    """jobflow's :class:`~jobflow.managers.fireworks.JobFiretask`, whose added fireworks carry readable names.

    The jobs a running job adds (``Response(replace/addition/detour)``) become fireworks named by
    :func:`firework_name`, on any worker (``mlipflow worker``, ``rlaunch``, an in-process run).
    """

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        action = super().run_task(fw_spec)
        for workflow in [*(action.detours or []), *(action.additions or [])]:
            _prepare_workflow(workflow)
        return action


def to_workflow(flow: Flow | Job, **kwargs: Any) -> Workflow:
    """A FireWorks workflow of ``flow`` with readable firework names (``kwargs`` go to ``Workflow``)."""
    return _prepare_workflow(flow_to_workflow(flow, **kwargs))


def submit(flow: Flow | Job, stores: Stores | None = None) -> dict[str, int]:
    """Add a flow to the LaunchPad; return jobflow uuid -> fw_id.

    Jobs marked with :func:`set_resource` carry their category; the others go to cpu workers.

    Workers started with :func:`run_worker` (``mlipflow worker``) or FireWorks' ``rlaunch`` with the
    fworker files in ``launchpad/`` pick the jobs of their category.
    """
    stores = stores or get_stores()
    flow = flow if isinstance(flow, Flow) else Flow([flow])
    workflow = to_workflow(flow)
    old_ids = {fw.tasks[0]["job"].uuid: fw.fw_id for fw in workflow.fws}
    mapping = stores.launchpad.add_wf(workflow)
    return {job_uuid: mapping[old] for job_uuid, old in old_ids.items()}


def make_fworker(category: str | None, name: str | None = None, settings: MlipflowSettings | None = None) -> FWorker:
    """A FireWorks worker for one category (``None`` takes fireworks of any category).

    The cpu worker also takes jobs that state no resource (small bookkeeping jobs, labeling).
    """
    settings = settings or load_settings()
    wanted: str | list[str | None] = category or ""
    if category == settings.cpu_category:
        wanted = [category, None]  # MongoDB's $in with null also matches a missing _category
    return FWorker(name=name or f"mlipflow-{category or 'any'}-{os.getpid()}", category=wanted)


def run_worker(
    category: str | None = None,
    nlaunches: int = 0,
    max_loops: int = -1,
    sleep_time: int = 5,
    launch_dir: str | Path | None = None,
    settings: MlipflowSettings | None = None,
    launchpad: LaunchPad | None = None,
) -> None:
    """Pull and run fireworks of ``category`` until none is left (``rlaunch rapidfire``).

    jobflow's jobs inside the fireworks write their outputs to the JobStore of the same settings.

    Parameters
    ----------
    category
        ``cpu``, ``gpu``, or ``None`` for any.
    nlaunches
        Stop after this many launches (0: until the queue is empty).
    max_loops
        Number of polling loops when ``nlaunches`` is 0 (-1: stop as soon as nothing is ready).
    sleep_time
        Seconds between polls (s, at least 1: FireWorks reads 0 as its 60 s default).
    launch_dir
        Where launch directories are made (default ``MLIPFLOW_HOME/launches``).
    """
    settings = settings or load_settings()
    stores = get_stores(settings)
    # jobflow's JobFiretask uses SETTINGS.JOB_STORE when a firework carries no store of its own
    # (we never serialise a store, and so never a password, into the fireworks)
    jobflow.SETTINGS.JOB_STORE = stores.jobstore
    launchpad = launchpad or stores.launchpad
    root = Path(launch_dir or settings.home / "launches")
    root.mkdir(parents=True, exist_ok=True)
    rapidfire(
        launchpad,
        make_fworker(category, settings=settings),
        nlaunches=nlaunches,
        max_loops=max_loops,
        sleep_time=max(1, sleep_time),
        m_dir=str(root),
        strm_lvl="WARNING",
    )


def waiting_elsewhere(launchpad: LaunchPad, category: str | None) -> dict[str, int]:
    """Fireworks still queued (READY or WAITING) that a worker of ``category`` cannot run, by their category.

    Empty for a worker of any category (``None``).  A worker that ran out of work calls this to say what the
    campaign now waits for (e.g. ``{"gpu": 3}``: start a gpu worker).
    """
    if category is None:
        return {}
    counts: dict[str, int] = {}
    for fw in launchpad.fireworks.find({"state": {"$in": ["READY", "WAITING"]}, "spec._category": {"$ne": category}},
                                       {"spec._category": 1}):
        other = str((fw.get("spec") or {}).get("_category") or "any")
        counts[other] = counts.get(other, 0) + 1
    return counts


# ------------------------------------------------------------------------------ running a campaign here
#: prefix of the FireWorks worker name of an in-process run (``run_here``): ``mlipflow-run <campaign>@<host>:<pid>``
HERE_WORKER = "mlipflow-run"
#: workflow metadata marking a workflow run by a process of its own (``mlipflow run``), not by workers
HERE_KEY = "mlipflow_run_here"
_QUEUED = ("READY", "WAITING", "RESERVED", "RUNNING")


def fingerprint(obj: Any) -> str:
    """16 hex digits of the JSON of ``obj`` (a campaign spec): same spec, same workflow."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def campaign_workflow(launchpad: LaunchPad, campaign: str) -> dict[str, Any] | None:
    """The newest workflow of ``campaign`` on the LaunchPad that is not archived (its document)."""
    docs = launchpad.workflows.find({"metadata.campaign": campaign, "state": {"$ne": "ARCHIVED"}},
                                    sort=[("created_on", -1)])
    return next(iter(docs), None)


def _launch_worker(launchpad: LaunchPad, launch_ids: list[int]) -> tuple[str, str] | None:
    """(host, worker name) of the latest of ``launch_ids``."""
    if not launch_ids:
        return None
    launch = launchpad.launches.find_one({"launch_id": launch_ids[-1]}, {"host": 1, "fworker.name": 1})
    if not launch:
        return None
    return str(launch.get("host") or ""), str((launch.get("fworker") or {}).get("name") or "")


def here_worker_gone(host: str, worker: str) -> bool:
    """Whether ``worker`` is an in-process runner of this host whose process has ended."""
    if not worker.startswith(HERE_WORKER + " ") or host != socket.gethostname():
        return False
    try:
        pid = int(worker.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return False
    return not pid_alive(pid)


def recover_workflow(launchpad: LaunchPad, wf_doc: dict[str, Any], rerun_failed: bool = True) -> list[int]:
    """Make a campaign workflow runnable again; return the fw_ids set back to READY/WAITING.

    Fireworks left RUNNING by an in-process run whose process has died (killed, crashed, the machine
    rebooted) are rerun at once (their work is reused: labels from the ledger, trainings from the model
    registry, MD and selection from their records); FIZZLED fireworks too, when ``rerun_failed``.
    RUNNING fireworks of other workers are left to FireWorks' lost-run detection (``mlipflow nightly``).
    """
    rerun = []
    fws = list(launchpad.fireworks.find({"fw_id": {"$in": wf_doc["nodes"]}, "state": {"$in": ["RUNNING",
                                         "RESERVED", "FIZZLED"]}}, {"fw_id": 1, "state": 1, "launches": 1}))
    lost = []
    for fw in fws:
        if fw["state"] == "FIZZLED":
            continue
        who = _launch_worker(launchpad, fw.get("launches") or [])
        if who is not None and here_worker_gone(*who):
            lost.append(fw["fw_id"])
    others_running = len([f for f in fws if f["state"] in ("RUNNING", "RESERVED")]) - len(lost)
    if lost and not others_running and wf_doc.get("locked"):
        # a process killed inside FireWorks' workflow lock leaves it held; nobody else runs this workflow
        launchpad.workflows.update_one({"nodes": wf_doc["nodes"][0]}, {"$unset": {"locked": ""}})
    for fw in fws:
        if fw["fw_id"] in lost or (rerun_failed and fw["state"] == "FIZZLED"):
            launchpad.rerun_fw(fw["fw_id"])
            rerun.append(fw["fw_id"])
    if rerun:
        logger.info("rerunning fireworks %s of workflow %s (left by a stopped run or failed)", rerun,
                    wf_doc["nodes"][0])
    return rerun


@contextlib.contextmanager
def _stop_on_interrupt() -> Any:
    """Note Ctrl-C: FireWorks records an interrupted firework as FIZZLED and would go on with the next one."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _failure(launchpad: LaunchPad, fw_id: int) -> str:
    """The last line of the stack trace of a FIZZLED firework's latest launch."""
    fw = launchpad.fireworks.find_one({"fw_id": fw_id}, {"launches": 1})
    launch = launchpad.launches.find_one({"launch_id": (fw.get("launches") or [None])[-1]}, {"action": 1}) or {}
    stored = ((launch.get("action") or {}).get("stored_data") or {})
    trace = str((stored.get("_exception") or {}).get("_stacktrace") or stored.get("_message") or "")
    lines = [ln for ln in trace.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "no error recorded"


def run_here(
    flow: Flow | Job,
    stores: Stores | None = None,
    *,
    campaign: str,
    spec: Any = None,
    root_dir: str | Path | None = None,
    poll: float = 1.0,
) -> dict[str, int]:
    """Run a campaign's flow through the LaunchPad with a worker in this process; return its fireworks by state.

    The campaign appears on the LaunchPad (and in ``mlipflow dashboard``) exactly as a submitted one: one
    workflow named after the campaign, fireworks named by :func:`firework_name`, categories for cpu/gpu
    workers.  This process runs its fireworks one after the other (any category); ``mlipflow worker``
    processes may take some of them too, and this one waits for those.

    Running again with the same ``spec`` continues the stored workflow: fireworks left RUNNING by a run that
    was killed, and failed ones, are rerun (see :func:`recover_workflow`).  With another spec (or after the
    workflow finished while the campaign did not stop) the old workflow is archived and a new one added.

    Parameters
    ----------
    flow
        The campaign's flow (used only when a new workflow is added).
    campaign
        The campaign name (the ``campaign`` metadata of every job).
    spec
        What defines the campaign (its spec document): a workflow made from another spec is not continued.
    root_dir
        Where launch directories are made (default ``MLIPFLOW_HOME/launches``).
    poll
        Seconds between looks at the LaunchPad while other workers run this campaign's fireworks (s).
    """
    from fireworks.utilities.fw_utilities import create_datestamp_dir

    from mlipflow.campaign.status import STOPPED

    stores = stores or get_stores()
    lp = stores.launchpad
    jobflow.SETTINGS.JOB_STORE = stores.jobstore  # see run_worker
    key = fingerprint(spec)
    wf_doc = campaign_workflow(lp, campaign)
    doc = stores.campaigns.find_one({"_id": campaign}, {"state": 1}) or {}
    keep = wf_doc is not None and (wf_doc.get("metadata") or {}).get("spec_fingerprint") == key
    if keep and wf_doc.get("state") == "COMPLETED" and doc.get("state") not in STOPPED:
        keep = False  # finished without a decision to stop (e.g. the campaign document was removed)
    if keep:
        recover_workflow(lp, wf_doc)
        first = wf_doc["nodes"][0]
    else:
        if wf_doc is not None:
            logger.info("archiving workflow %s of campaign %s (made from another spec)", wf_doc["nodes"][0],
                        campaign)
            lp.archive_wf(wf_doc["nodes"][0])
        flow = flow if isinstance(flow, Flow) else Flow([flow])
        workflow = to_workflow(flow, name=campaign, metadata={"campaign": campaign, HERE_KEY: True,
                                                              "spec_fingerprint": key})
        first = next(iter(lp.add_wf(workflow).values()))
    worker_name = f"{HERE_WORKER} {campaign}@{socket.gethostname()}:{os.getpid()}"
    root = Path(root_dir or stores.settings.home / "launches")
    root.mkdir(parents=True, exist_ok=True)
    rocket_logger = logging.getLogger("rocket.launcher")
    reported: set[tuple[int, int]] = set()
    with _stop_on_interrupt() as stop:
        while not stop.is_set():
            nodes = (lp.workflows.find_one({"nodes": first}, {"nodes": 1}) or {}).get("nodes", [first])
            states = Counter(f["state"] for f in lp.fireworks.find({"fw_id": {"$in": nodes}}, {"state": 1}))
            if states.get("READY"):
                # any category, but only this workflow's fireworks (not those of a submitted copy of the campaign)
                worker = FWorker(name=worker_name, category="", query={"fw_id": {"$in": nodes}})
                launch_dir = create_datestamp_dir(str(root), rocket_logger, prefix="launcher_")
                with contextlib.chdir(launch_dir):
                    ran = launch_rocket(lp, worker, strm_lvl="CRITICAL")
                if not os.listdir(launch_dir):
                    shutil.rmtree(launch_dir, ignore_errors=True)
                if ran and not stop.is_set():
                    _report_failures(lp, nodes, reported)
                if ran:
                    continue
            if not (states.get("RUNNING") or states.get("RESERVED")):
                break  # done, or nothing can run (WAITING behind a failed firework)
            time.sleep(poll)  # another worker runs one of them
    if stop.is_set():
        raise KeyboardInterrupt
    nodes = (lp.workflows.find_one({"nodes": first}, {"nodes": 1}) or {}).get("nodes", [first])
    return dict(Counter(f["state"] for f in lp.fireworks.find({"fw_id": {"$in": nodes}}, {"state": 1})))


def _report_failures(launchpad: LaunchPad, nodes: list[int], reported: set[tuple[int, int]]) -> None:
    """Log each new failure of a firework of ``nodes`` once (the error's last line; the trace is in the launch)."""
    for fw in launchpad.fireworks.find({"fw_id": {"$in": nodes}, "state": "FIZZLED"},
                                       {"fw_id": 1, "name": 1, "launches": 1}):
        tag = (fw["fw_id"], len(fw.get("launches") or []))
        if tag not in reported:
            reported.add(tag)
            logger.warning("firework %d (%s) failed: %s", fw["fw_id"], fw["name"], _failure(launchpad, fw["fw_id"]))
