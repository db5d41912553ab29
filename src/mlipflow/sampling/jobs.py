"""Sampling as jobflow jobs: committee MLIP-MD walkers (one job, many walkers) and AIMD (see ``aimd``).

Jobs pass small documents out: per walker an :class:`~mlipflow.sampling.md.MDResult` with the trajectory id in
the large-data store, never the frames themselves.

A finished committee-MD job is recorded (:mod:`mlipflow.replay`) under a key of everything that determines it
(calculator factory and its arguments, canonical structures, temperatures, settings with the seed, monitors,
metadata), so that running the same job again (a resumed campaign) reuses the stored trajectories.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from jobflow import Job, Maker, job
from pymatgen.core import Structure

from mlipflow.data.hashing import structure_hash
from mlipflow.errors import ConfigError
from mlipflow.execution import Resource, set_resource
from mlipflow.labeling.base import Labeler
from mlipflow.replay import finished_step, record_step, step_key
from mlipflow.sampling.md import MDSettings, TemperatureSchedule, run_walkers
from mlipflow.sampling.monitors import Monitor
from mlipflow.sampling.schemas import ReferenceMDSummary, SamplingSummary
from mlipflow.sampling.trajectory import TrajectoryStore
from mlipflow.sampling.uncertainty import CalculatorFactory
from mlipflow.storage import Stores, get_stores

logger = logging.getLogger(__name__)


def _finished_sampling(stores: Stores, key: str | None) -> SamplingSummary | None:
    """The recorded result of a finished run, if all its trajectories are still stored."""
    result = finished_step(stores, key)
    if result is None:
        return None
    summary = SamplingSummary(**result)
    ids = set(summary.trajectory_ids)
    if TrajectoryStore(stores).collection.count_documents({"_id": {"$in": list(ids)}}) != len(ids):
        return None
    return summary


@job(output_schema=SamplingSummary)
def committee_md(
    structures: list[Structure],
    calculator: CalculatorFactory,
    temperatures: list[float | TemperatureSchedule],
    settings: MDSettings,
    monitors: list[Monitor] | None = None,
    metadata: dict[str, Any] | None = None,
    processes: int = 1,
) -> SamplingSummary:
    """Job: run every structure at every temperature with the committee; trajectories go to the store.

    A run with the same inputs that already finished is not repeated: its stored result is returned.
    ``processes`` walkers run at the same time (spawned processes, each building the committee).
    """
    stores = get_stores()
    key = step_key("committee_md", {
        "calculator": [calculator.factory, calculator.kwargs], "structures": [structure_hash(s) for s in structures],
        "temperatures": temperatures, "settings": settings.model_dump(mode="json"), "monitors": monitors,
        "metadata": metadata or {}})
    done = _finished_sampling(stores, key)
    if done is not None:
        logger.info("committee MD: reusing the finished run %s (%d walkers)", key, len(done.walkers))
        return done
    committee = calculator if processes > 1 else calculator.build()
    results = run_walkers(structures, temperatures, committee, settings, stores=stores, monitors=monitors,
                          metadata={"calculator": calculator.factory, **(metadata or {})}, processes=processes)
    summary = SamplingSummary(walkers=results)
    logger.info("committee MD: %d walkers, stop reasons %s", len(results), summary.stop_reasons())
    if not any(w.stop_reason.startswith("error") for w in results):  # a failed walker runs again on resume
        record_step(stores, key, "committee_md", summary.model_dump(mode="json"))
    return summary


@dataclass
class CommitteeMDMaker(Maker):
    """MLIP-MD exploration with a committee: many walkers (structures x temperatures) in one job.

    Parameters
    ----------
    name
        Job name.
    calculator
        How the job builds its committee (e.g. ``mlipflow.sampling.uncertainty:mace_committee`` with
        ``model_paths``); any callable returning an ASE calculator or a list of them.
    temperatures
        Temperatures (K) or :class:`~mlipflow.sampling.md.TemperatureSchedule` objects (ramps, melt-quench).
    settings
        MD settings (ensemble, time step in fs, steps, record stride, upper trust bound in eV/Å, seed).
    monitors
        Stability monitors (default: all of :func:`~mlipflow.sampling.monitors.default_monitors`).
    resource
        Worker category: MD goes to ``gpu`` workers.
    metadata
        Kept in every trajectory header (campaign, iteration, ...).
    processes
        Walkers run at the same time in separate processes (1: one after the other).
    """

    name: str = "committee md"
    calculator: CalculatorFactory | None = None
    temperatures: list[float | TemperatureSchedule] = field(default_factory=lambda: [300.0])
    settings: MDSettings = field(default_factory=MDSettings)
    monitors: list[Any] | None = None
    resource: Resource = "gpu"
    metadata: dict[str, Any] = field(default_factory=dict)
    processes: int = 1

    def make(self, structures: list[Structure]) -> Job:
        """The sampling job over ``structures`` (Å)."""
        if self.calculator is None:
            raise ConfigError("CommitteeMDMaker needs a calculator factory (e.g. mace_committee with model_paths)")
        if not self.temperatures:
            raise ConfigError("CommitteeMDMaker needs at least one temperature (K)")
        md_job = committee_md(structures, self.calculator, list(self.temperatures), self.settings,
                              self.monitors, self.metadata, self.processes)
        md_job.name = self.name
        set_resource(md_job, self.resource)
        return md_job


@job(output_schema=ReferenceMDSummary)
def reference_md_job(
    structures: list[Structure] | dict[str, Any],
    labeler: Labeler,
    temperatures: list[float | TemperatureSchedule],
    settings: MDSettings,
    replicas: int = 1,
    equilibration: int = 0,
    processes: int = 1,
    tags: dict[str, Any] | None = None,
    entries: list[str] | None = None,
) -> ReferenceMDSummary:
    """Job: reference MD with the labeler (see :func:`~mlipflow.sampling.reference.run_reference_md`).

    ``entries``: only the structures whose provenance ``entry`` is one of these.  A finished run with the same
    inputs is replayed (its frames and trajectories are in the store).
    """
    from mlipflow.sampling.reference import (
        record_reference_md,
        reference_md_key,
        reference_md_replayed,
        run_reference_md,
    )

    if isinstance(structures, dict):
        structures = structures["structures"]
    elif hasattr(structures, "structures"):
        structures = structures.structures
    if entries is not None:
        entry_of = [((s.properties or {}).get("provenance") or {}).get("entry") for s in structures]
        chosen = [s for s, e in zip(structures, entry_of, strict=True) if e in entries]
        if not chosen:
            raise ConfigError(f"reference MD: no structure of the entries {entries} (the structures come from "
                              f"entries {sorted(set(map(str, entry_of)))})")
        structures = chosen
    stores = get_stores()
    key = reference_md_key(structures, labeler, temperatures, settings, replicas=replicas,
                           equilibration=equilibration, tags=tags or {})
    done = reference_md_replayed(stores, key)
    if done is not None:
        logger.info("reference MD: replaying the finished run %s (%d frames)", key, len(done.frame_ids))
        return done
    summary = run_reference_md(stores, structures, labeler, temperatures, settings, replicas=replicas,
                               equilibration=equilibration, processes=processes, tags=tags)
    record_reference_md(stores, key, summary)
    return summary


@dataclass
class ReferenceMDMaker(Maker):
    """MD with the labeler itself (AIMD or its surrogate stand-in); its frames after equilibration are labels.

    Parameters
    ----------
    name
        Job name.
    labeler
        The reference labeler (needs an in-process ASE calculator, e.g. a surrogate).
    temperatures
        Temperatures (K) or schedules.
    settings
        MD settings (ensemble, time step in fs, steps, record stride, seed).
    replicas
        Independent walkers (seeds) per structure and temperature.
    equilibration
        Steps whose frames are not kept as labels.
    processes
        Walkers run at the same time (spawned processes).
    resource
        Worker category (reference calculations go to ``cpu`` workers by default).
    """

    name: str = "reference md"
    labeler: Labeler | None = None
    temperatures: list[float | TemperatureSchedule] = field(default_factory=lambda: [300.0])
    settings: MDSettings = field(default_factory=MDSettings)
    replicas: int = 1
    equilibration: int = 0
    processes: int = 1
    resource: Resource = "cpu"

    def make(self, structures: Any, tags: dict[str, Any] | None = None, entries: list[str] | None = None) -> Job:
        """The reference MD job over ``structures`` (a list, or a structure-set document with ``structures``).

        ``entries``: only the structures of these structure-section entries.
        """
        if self.labeler is None:
            raise ConfigError("ReferenceMDMaker needs a labeler")
        if not self.temperatures:
            raise ConfigError("ReferenceMDMaker needs at least one temperature (K)")
        md_job = reference_md_job(structures, self.labeler, list(self.temperatures), self.settings, self.replicas,
                                  self.equilibration, self.processes, tags, entries)
        md_job.name = self.name
        set_resource(md_job, self.resource)
        return md_job
