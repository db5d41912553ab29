"""Labeling as jobflow jobs: one job labels a batch of frames, writing each result as soon as it is done.

:func:`label_structures` is the batch runner (usable without jobflow); :class:`LabelMaker` wraps it in jobs,
one per batch, plus a small gathering job.  Jobs pass structures in and small summaries out (counts and frame
ids), never labels or datasets: the labels live in the frames collection.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobflow import Flow, Job, Maker, Response, job
from pymatgen.core import Structure

from mlipflow.data import LabeledFrame, Provenance
from mlipflow.errors import DataError, LabelingError
from mlipflow.execution import Resource, set_resource
from mlipflow.labeling.base import Labeler
from mlipflow.labeling.electronic import with_system_charge
from mlipflow.labeling.filters import FamilyEnergyStats, SanityFilter
from mlipflow.labeling.ledger import LabelLedger, provenance_of
from mlipflow.labeling.schemas import LabelSummary
from mlipflow.storage import Stores, get_stores

logger = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, LabelingError) else f"{type(exc).__name__}: {text}"


def label_structures(
    structures: Sequence[Structure],
    labeler: Labeler,
    *,
    stores: Stores | None = None,
    provenance: Sequence[Provenance | dict[str, Any] | None] | None = None,
    max_attempts: int = 2,
    sanity_filter: SanityFilter | None = None,
    stale_after: float = 6 * 3600.0,
    workdir: str | Path | None = None,
) -> LabelSummary:
    """Label structures that are not labeled yet by this labeler; write each result as soon as it is known.

    Parameters
    ----------
    structures
        Structures to label (Å).  ``structure.properties["provenance"]`` (family, generator, parameters,
        parent) is kept in each frame's provenance.
    labeler
        The labeler (its ``info`` makes the frame ids).
    stores
        Default: :func:`~mlipflow.storage.get_stores` from the settings.
    provenance
        Optional provenance per structure, overriding the structure's own.
    max_attempts
        Attempts per frame (over all runs) before it stays ``failed``.
    sanity_filter
        Filters applied to every new label (default :class:`SanityFilter` with stress required if the
        labeler computes it).
    stale_after
        Seconds after which another worker's ``running`` claim is considered abandoned (s).
    workdir
        Parent of the per-frame working directories of file-based labelers (default: the current directory).

    Returns
    -------
    LabelSummary
        Frame ids in input order and counts.
    """
    stores = stores or get_stores()
    start = time.perf_counter()
    info = labeler.info
    ledger = LabelLedger(stores.frames, info, stale_after=stale_after)
    sanity_filter = sanity_filter or SanityFilter(require_stress=labeler.computes_stress)
    stats = FamilyEnergyStats.from_frames(stores.frames, info.settings_hash)
    counts: Counter[str] = Counter()
    frame_ids: list[str] = []
    calls = 0
    labeler_ready = False
    provenance = list(provenance) if provenance is not None else [None] * len(structures)
    if len(provenance) != len(structures):
        raise DataError(f"{len(provenance)} provenance entries given for {len(structures)} structures")
    root = Path(workdir) if workdir is not None else Path.cwd()
    for structure, prov in zip(structures, provenance, strict=True):
        if isinstance(prov, dict):
            prov = provenance_of(structure, **prov)
        structure, charge_error = _charged(structure, prov, labeler)
        frame_id, status = ledger.register(structure, prov)
        frame_ids.append(frame_id)
        if status in ("labeled", "filtered"):
            counts["reused" if status == "labeled" else "filtered"] += 1
            continue
        claim = ledger.claim(frame_id, max_attempts)
        if claim is None:
            now = ledger.status(frame_id)
            key = {"labeled": "reused", "filtered": "filtered", "failed": "failed"}.get(
                now or "", "in_flight"
            )
            counts[key] += 1
            continue
        refused = charge_error or sanity_filter.check_structure(claim.structure)
        if refused:  # broken geometry: never sent to the labeler
            ledger.fail(claim, refused, final=True)
            counts["failed"] += 1
            logger.warning("frame %s: %s", frame_id, refused)
            continue
        if not labeler_ready:
            try:
                labeler.setup()
            except BaseException:  # a labeler that cannot start labels nothing: the frame stays to be labeled
                ledger.release(claim)
                raise
            labeler_ready = True
        attempts = claim.attempts
        while True:
            frame_dir = None
            if labeler.needs_workdir:
                root.mkdir(parents=True, exist_ok=True)
                frame_dir = Path(tempfile.mkdtemp(prefix=f"label_{frame_id[:12]}_", dir=root))
            try:
                calls += 1
                with ledger.heartbeat(claim):  # renews the claim while the calculation lives
                    result = labeler.label_one(claim.structure, frame_dir)
            except (KeyboardInterrupt, SystemExit):
                ledger.release(claim)
                raise
            except Exception as exc:
                attempts += 1
                reason = _describe(exc)
                final = attempts >= max_attempts
                ledger.fail(claim, reason, final=final)
                logger.warning("frame %s: attempt %d/%d failed: %s", frame_id, attempts, max_attempts, reason)
                if final:
                    counts["failed"] += 1
                    break
                continue
            natoms = len(claim.structure)
            reason = sanity_filter.check(result, natoms, claim.family, stats)
            if ledger.complete(claim, result, filtered_reason=reason):
                if reason:
                    counts["filtered"] += 1
                    logger.info("frame %s filtered: %s", frame_id, reason)
                else:
                    counts["labeled"] += 1
                    stats.add(claim.family, result.energy / natoms)
            else:
                counts["in_flight"] += 1
            break
    summary = LabelSummary(
        labeler=info.describe(),
        labeler_hash=info.settings_hash,
        frame_ids=frame_ids,
        counts=dict(counts),
        calculator_calls=calls,
        seconds=time.perf_counter() - start,
    )
    logger.info("labeling batch with %s: %s (%d calculator calls)", summary.labeler, summary.counts, calls)
    return summary


def _charged(structure: Structure, prov: Provenance | None, labeler: Labeler) -> tuple[Structure, str | None]:
    """The structure with its total charge for a labeler that uses it; an unusable charge is a reason."""
    if not labeler.uses_charge:
        return structure, None
    try:
        return with_system_charge(structure, prov), None
    except LabelingError as exc:
        return structure, str(exc)


def frames_to_structures(
    stores: Stores, frame_ids: Sequence[str]
) -> tuple[list[Structure], list[Provenance]]:
    """Structures and provenance of stored frames (any labeler), to be labeled by another labeler."""
    docs = {d["_id"]: d for d in stores.frames.find({"_id": {"$in": list(frame_ids)}})}
    missing = [i for i in frame_ids if i not in docs]
    if missing:
        raise DataError(f"frames not in the store: {missing[:5]} ({len(missing)} missing)")
    frames = [LabeledFrame.from_document(docs[i]) for i in frame_ids]
    return [f.structure for f in frames], [f.provenance for f in frames]


def _as_dict(provenance: Provenance | dict[str, Any] | None) -> dict[str, Any]:
    if provenance is None:
        return {}
    return provenance.model_dump(exclude_none=True) if isinstance(provenance, Provenance) else dict(provenance)


@job(output_schema=LabelSummary)
def label_batch(
    labeler: Labeler,
    structures: list[Structure] | None = None,
    frame_ids: list[str] | None = None,
    max_attempts: int = 2,
    sanity_filter: SanityFilter | None = None,
    stale_after: float = 6 * 3600.0,
    tags: dict[str, Any] | None = None,
) -> LabelSummary:
    """Job: label one batch (structures, or ids of stored frames); return its :class:`LabelSummary`.

    ``tags`` (e.g. ``{"campaign": "li2o", "iteration": 0}``) are added to every new frame's provenance.
    """
    stores = get_stores()
    provenance = None
    if frame_ids:
        structures, provenance = frames_to_structures(stores, frame_ids)
    if tags:
        provenance = [{**_as_dict(p), **tags} for p in (provenance or [None] * len(structures or []))]
    summary = label_structures(
        structures or [],
        labeler,
        stores=stores,
        provenance=provenance,
        max_attempts=max_attempts,
        sanity_filter=sanity_filter,
        stale_after=stale_after,
    )
    return summary


@job(output_schema=LabelSummary)
def gather_label_summaries(summaries: list[LabelSummary | dict[str, Any]]) -> LabelSummary:
    """Job: merge batch summaries into one (frame ids in input order, summed counts)."""
    return LabelSummary.merge(summaries)


@dataclass
class LabelMaker(Maker):
    """Label frames in batches: one job per ``batch_size`` frames, then one summary.

    Parameters
    ----------
    name
        Flow name.
    labeler
        The labeler (:class:`~mlipflow.labeling.surrogate.SurrogateLabeler`,
        :class:`~mlipflow.labeling.vasp.VaspLabeler`, :class:`~mlipflow.labeling.cp2k.Cp2kLabeler`).
    batch_size
        Frames per job.
    max_attempts
        Attempts per frame before it stays ``failed``.
    sanity_filter
        Label sanity filters (default: :class:`SanityFilter` requiring stress when the labeler computes it).
    stale_after
        Seconds after which a ``running`` claim of another worker is considered abandoned (s).
    resource
        Worker category of the batch jobs (``cpu``: DFT runs on CPU nodes).
    """

    name: str = "label"
    labeler: Labeler | None = None
    batch_size: int = 20
    max_attempts: int = 2
    sanity_filter: SanityFilter | None = None
    stale_after: float = 6 * 3600.0
    batch_kwargs: dict[str, Any] = field(default_factory=dict)
    resource: Resource = "cpu"

    def make(
        self,
        structures: Sequence[Structure] | None = None,
        frame_ids: Sequence[str] | None = None,
        tags: dict[str, Any] | None = None,
    ) -> Flow:
        """Build the labeling flow.

        Parameters
        ----------
        structures
            Structures to label (with ``properties["provenance"]``), or
        frame_ids
            Ids of stored frames whose structures are to be labeled by this labeler.
        tags
            Provenance keys added to every frame (e.g. ``campaign`` and ``iteration``).

        Returns
        -------
        Flow
            Batch jobs and a gathering job; the flow's output is a :class:`LabelSummary`.
        """
        if self.labeler is None:
            raise LabelingError(
                f"LabelMaker {self.name!r} has no labeler: give labeler=SurrogateLabeler(...) or so"
            )
        if (structures is None) == (frame_ids is None):
            raise LabelingError("LabelMaker.make takes either structures or frame_ids")
        items = list(structures if structures is not None else frame_ids or [])
        size = max(1, int(self.batch_size))
        jobs: list[Job] = []
        for n, start in enumerate(range(0, len(items), size)):
            chunk = items[start : start + size]
            kwargs = {"structures": chunk} if structures is not None else {"frame_ids": chunk}
            batch = label_batch(
                self.labeler,
                max_attempts=self.max_attempts,
                sanity_filter=self.sanity_filter,
                stale_after=self.stale_after,
                tags=tags,
                **kwargs,
            )
            batch.name = f"{self.name} batch {n}"
            set_resource(batch, self.resource)
            jobs.append(batch)
        gather = gather_label_summaries([b.output for b in jobs])
        gather.name = f"{self.name} summary"
        return Flow([*jobs, gather], output=gather.output, name=self.name)


@job
def label_when_known(maker: LabelMaker, structures: Sequence[Structure] | dict[str, Any],
                     tags: dict[str, Any] | None = None) -> Response:
    """Replace this job by ``maker``'s labeling flow once the structures are known (dynamic batching).

    ``structures`` may be a list of structures or a document with a ``structures`` key (the output of
    :class:`~mlipflow.structures.jobs.StructureSetMaker`); ``tags`` go into every frame's provenance.
    """
    if isinstance(structures, dict):
        structures = structures["structures"]
    elif hasattr(structures, "structures"):
        structures = structures.structures
    return Response(replace=maker.make(structures=list(structures), tags=tags))
