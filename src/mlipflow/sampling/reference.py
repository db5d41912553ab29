"""Reference MD: molecular dynamics with the labeler itself (AIMD, or its surrogate stand-in), as labeled frames.

The first sampling stage of a campaign: the reference calculator runs MD on the starting cells at the given
temperatures (and replicas with other seeds); every recorded frame after the equilibration is a label of the
labeler (energy, forces) and goes to the frames collection with ``origin="reference_md"``, grouped by its
trajectory (so that a whole trajectory lands in one split).  The trajectories stay in the trajectory store:
they are the reference MD of the benchmark stage (RDF, ADF, MSD).

Physics: with a surrogate labeler the MD forces *are* the labeler's forces, so these frames carry the
labeler's own identity and settings (a frame labeled again by a single point would get the same id).  A DFT
labeler's AIMD uses other settings (precision, spin, smearing) than its static labels and goes through
atomate2's MD Makers (:mod:`mlipflow.sampling.aimd`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from pymatgen.core import Structure

from mlipflow.data import Dataset, LabeledFrame, Provenance
from mlipflow.data.hashing import structure_hash
from mlipflow.errors import ConfigError
from mlipflow.labeling.base import Labeler, LabelerCalculator
from mlipflow.replay import finished_step, record_step, step_key
from mlipflow.sampling.md import MDSettings, TemperatureSchedule, run_walkers
from mlipflow.sampling.schemas import ReferenceMDSummary
from mlipflow.sampling.trajectory import TrajectoryStore
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)


def run_reference_md(
    stores: Stores,
    structures: Sequence[Structure],
    labeler: Labeler,
    temperatures: Sequence[float | TemperatureSchedule],
    settings: MDSettings,
    *,
    replicas: int = 1,
    equilibration: int = 0,
    processes: int = 1,
    tags: dict[str, Any] | None = None,
) -> ReferenceMDSummary:
    """MD with the labeler on every structure at every temperature; the frames after equilibration become labels.

    Parameters
    ----------
    stores
        The stores (trajectories, frames).
    structures
        Starting cells (Å); ``properties["provenance"]["family"]`` names each walker's family.
    labeler
        The reference (its :meth:`~mlipflow.labeling.base.Labeler.ase_calculator` drives the MD).
    temperatures
        Temperatures (K) or schedules.
    settings
        MD settings (ensemble, time step in fs, steps, record stride, seed); walker ``k`` uses seed
        ``settings.seed + k``.
    replicas
        Independent walkers (other seeds) per structure and temperature: each is its own group of frames.
    equilibration
        MD steps whose frames are not kept as labels (the trajectory keeps them).
    processes
        Walkers run at the same time in spawned processes.
    tags
        Provenance keys of every frame (``campaign``, ``iteration``).

    Returns
    -------
    ReferenceMDSummary
    """
    if replicas < 1:
        raise ConfigError(f"reference MD needs replicas >= 1, got {replicas}")
    start = time.perf_counter()
    info = labeler.info
    expanded = [s for s in structures for _ in range(replicas)]
    walkers = run_walkers(expanded, list(temperatures), LabelerCalculator(labeler), settings, stores=stores,
                          metadata={"kind": "reference_md", "labeler": info.describe(), **(tags or {})},
                          processes=processes)
    tstore = TrajectoryStore(stores)
    frames: list[LabeledFrame] = []
    for walker in walkers:
        if not walker.trajectory_id:
            continue
        if walker.stop_reason != "completed":
            logger.warning("reference MD walker %d (%s) stopped: %s; its frames before the stop are kept",
                           walker.walker, walker.family, walker.stop_reason)
        group = f"trajectory:{walker.trajectory_id}"
        for atoms in tstore.iter_atoms(walker.trajectory_id):
            step = int(atoms.info.get("step", 0))
            if step < equilibration:
                continue
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            atoms.calc = None
            provenance = Provenance(
                origin="reference_md", family=walker.family, generator="reference_md", parent=group, group=group,
                temperature=float(atoms.info.get("target_temperature", walker.temperature)), md_step=step,
                source=walker.trajectory_id, source_index=int(atoms.info.get("frame", 0)), **(tags or {}))
            frames.append(LabeledFrame.from_atoms(atoms, info, energy=energy, forces=forces,
                                                  provenance=provenance))
    added = Dataset(stores).add_frames(frames)
    ids = list(dict.fromkeys(f.content_hash for f in frames))
    summary = ReferenceMDSummary(labeler=info.describe(), labeler_hash=info.settings_hash, frame_ids=ids,
                                 walkers=walkers, equilibration_steps=equilibration,
                                 seconds=time.perf_counter() - start)
    logger.info("reference MD with %s: %d walkers, %d labeled frames (%d new) in %.0f s", info.describe(),
                len(walkers), len(ids), len(added.inserted), summary.seconds)
    return summary


def reference_md_key(structures: Sequence[Structure], labeler: Labeler, temperatures: Sequence[Any],
                     settings: MDSettings, **options: Any) -> str:
    """Replay key of a reference MD run (everything that determines it)."""
    return step_key("reference_md", {
        "labeler": labeler.info.settings_hash, "structures": [structure_hash(s) for s in structures],
        "temperatures": list(temperatures), "settings": settings.model_dump(mode="json"), **options})


def reference_md_replayed(stores: Stores, key: str) -> ReferenceMDSummary | None:
    """The recorded result of a finished reference MD, if its frames and trajectories are all still stored."""
    done = finished_step(stores, key)
    if done is None:
        return None
    summary = ReferenceMDSummary(**done)
    ids = summary.frame_ids
    if stores.frames.count_documents({"_id": {"$in": ids}, "status": "labeled"}) != len(ids):
        return None
    tids = summary.trajectory_ids
    if TrajectoryStore(stores).collection.count_documents({"_id": {"$in": tids}}) != len(tids):
        return None
    return summary


def record_reference_md(stores: Stores, key: str, summary: ReferenceMDSummary) -> None:
    """Record a finished reference MD for replay (not when a walker failed with an error)."""
    if not any(w.stop_reason.startswith("error") for w in summary.walkers):
        record_step(stores, key, "reference_md", summary.model_dump(mode="json"))
