"""Run jobflow flows locally, or submit them to FireWorks and run workers on cpu/gpu categories.

The same flow runs both ways.  Locally it runs in this process on the configured JobStore.  Submitted,
each job becomes a Firework whose ``_category`` says which workers may take it: labeling (DFT) jobs go
to ``cpu`` workers, training and MD to ``gpu`` workers (names from the settings).  A Maker states the
kind of resource a job needs with :func:`set_resource`; jobs that say nothing go to ``cpu``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

import jobflow
from fireworks import FWorker, LaunchPad
from fireworks.core.rocket_launcher import rapidfire
from jobflow import Flow, Job
from jobflow.managers.fireworks import flow_to_workflow

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


def submit(flow: Flow | Job, stores: Stores | None = None) -> dict[str, int]:
    """Add a flow to the LaunchPad; return jobflow uuid -> fw_id.

    Jobs marked with :func:`set_resource` carry their category; the others go to cpu workers.

    Workers started with :func:`run_worker` (``mlipflow worker``) or FireWorks' ``rlaunch`` with the
    fworker files in ``launchpad/`` pick the jobs of their category.
    """
    stores = stores or get_stores()
    flow = flow if isinstance(flow, Flow) else Flow([flow])
    workflow = flow_to_workflow(flow)
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
