"""jobflow Makers of the selection stage: select from explored trajectories, structures of the picks, assess them.

The logic lives in :mod:`mlipflow.selection.select` (the selector) and :mod:`mlipflow.selection.assessment` (spread
against true error); here are the jobs that run them, each returning a document of
:mod:`mlipflow.selection.schemas`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from jobflow import Maker, job

from mlipflow.errors import ConfigError
from mlipflow.replay import finished_step, record_step, step_key
from mlipflow.selection.assessment import assess_picks
from mlipflow.selection.schemas import PickAssessment, PickedStructures, SelectedFrame, SelectionResult
from mlipflow.selection.select import (
    Method,
    picked_structures,
    select_frames,
    split_budget,
    temperature_label,
)
from mlipflow.selection.uncertainty import TrustWindowSelector
from mlipflow.storage import get_stores

logger = logging.getLogger(__name__)

__all__ = ["PickedStructures", "SelectedFrame", "SelectionResult", "SelectorMaker", "assess_picks_job",
           "picked_structures", "picked_structures_job", "select_frames", "split_budget", "temperature_label"]


def trajectory_ids(sampling: Any) -> list[str]:
    """Trajectory ids of a sampling output (a SamplingSummary, its dict, a list of them, or ids)."""
    if isinstance(sampling, dict):
        return [w["trajectory_id"] for w in sampling.get("walkers", []) if w.get("trajectory_id")]
    if isinstance(sampling, list | tuple):
        ids: list[str] = []
        for item in sampling:
            ids += [item] if isinstance(item, str) else trajectory_ids(item)
        return ids
    return list(sampling.trajectory_ids)


def _get_id(committee: Any) -> str | None:
    if committee is None or isinstance(committee, str):
        return committee
    return committee.get("model_id") if isinstance(committee, dict) else getattr(committee, "model_id", None)


def _spread_of(committee: Any) -> dict[str, float]:
    if committee is None:
        return {}
    return dict((committee.get("spread") if isinstance(committee, dict) else getattr(committee, "spread", None))
                or {})


@job(output_schema=PickedStructures)
def picked_structures_job(result: SelectionResult, campaign: str | None = None, iteration: int | None = None,
                          limit: int | None = None) -> PickedStructures:
    """Job: the structures of a selection (few hundred at most), for a labeler's ``make``.

    ``limit``: label at most this many (what is left of the campaign's label budget; candidates first).
    """
    result = result if isinstance(result, SelectionResult) else SelectionResult(**result)
    if limit is not None and len(result.picks) > limit:
        kept = sorted(result.picks, key=lambda p: p.spot_check)[: max(0, limit)]
        logger.info("labeling %d of %d picks: the label budget has %d labels left", len(kept), len(result.picks),
                    limit)
        result = result.model_copy(update={"picks": kept})
    structures = picked_structures(get_stores(), result, campaign=campaign, iteration=iteration)
    return PickedStructures(structures=structures, n_spot_checks=sum(p.spot_check for p in result.picks))


@dataclass
class SelectorMaker(Maker):
    """Select frames to label from a sampling job's trajectories (see :func:`~mlipflow.selection.select.select_frames`).

    Parameters
    ----------
    name
        Job name.
    trust
        Trust windows per family (eV/Å, or multiples of the committee's validation spread in ``relative`` mode).
    descriptor
        :class:`~mlipflow.selection.descriptors.SoapDescriptor` or ``MaceDescriptor`` (default SOAP over the
        trajectories' species).
    method
        ``fps``, ``kmeans``, ``minibatch`` or ``birch``.
    budget
        Frames per iteration (spot checks included).
    budget_per_family
        Cap per family (int, or dict with an optional ``default``).
    seed
        Seed of every random choice.
    dedup_distance
        Descriptor distance under which a candidate duplicates a dataset frame.
    cluster_kwargs
        Extra clustering arguments.
    spot_checks
        Frames called accurate labeled per iteration, to measure the true error of "accurate".
    stop_frames
        Of every walker a stability monitor stopped, its last this many frames the labeler accepts are labeled.
    """

    name: str = "select"
    trust: TrustWindowSelector = field(default_factory=TrustWindowSelector)
    descriptor: Any = None
    method: Method = "fps"
    budget: int = 100
    budget_per_family: int | dict[str, int] | None = None
    seed: int = 0
    dedup_distance: float | None = None
    cluster_kwargs: dict[str, Any] = field(default_factory=dict)
    spot_checks: int = 0
    stop_frames: int = 0

    @job(output_schema=SelectionResult)
    def make(self, sampling: Any, dataset_version: str | None = None, committee: Any = None) -> SelectionResult:
        """Select from ``sampling`` (a sampling output, or trajectory ids) against ``dataset_version``'s frames.

        ``committee`` (a training output with its validation ``spread``) scales a relative trust window.  A
        selection that already finished on the same inputs is replayed, not redone: redone after its picks were
        labeled, dedup would drop them and pick others (a resumed campaign must follow the same path).
        """
        if self.budget < 0:
            raise ConfigError(f"selection budget must be >= 0, got {self.budget}")
        ids = trajectory_ids(sampling)
        stores = get_stores()
        families = sorted({(stores.collection("trajectories").find_one({"_id": t}, {"metadata.family": 1}) or {})
                           .get("metadata", {}).get("family") or "unknown" for t in ids})
        trust, units = self.trust.scaled(_spread_of(committee), families)
        key = step_key("select", {"trajectories": ids, "maker": self.as_dict(), "version": dataset_version,
                                  "trust": trust})
        done = finished_step(stores, key)
        if done is not None:
            logger.info("selection: replaying the finished selection %s", key)
            return SelectionResult(**done)
        descriptor = self.descriptor
        if hasattr(descriptor, "resolve"):  # the committee's own MACE features
            descriptor = descriptor.resolve(stores, _get_id(committee))
        result = select_frames(stores, ids, trust=trust, descriptor=descriptor, method=self.method,
                               budget=self.budget, budget_per_family=self.budget_per_family, seed=self.seed,
                               dedup_distance=self.dedup_distance, reference_version=dataset_version,
                               n_spot_checks=self.spot_checks, cluster_kwargs=self.cluster_kwargs or None,
                               n_stop_frames=self.stop_frames)
        result.trust_units = units
        record_step(stores, key, "select", result.model_dump(mode="json"))
        return result


@job(output_schema=PickAssessment)
def assess_picks_job(selection: SelectionResult, labels: Any, iteration: int | None = None) -> PickAssessment:
    """Job: the committee's spread against its true error on the labeled picks (``labels``: a LabelSummary)."""
    frame_ids = labels.get("frame_ids", []) if isinstance(labels, dict) else labels.frame_ids
    selection = selection if isinstance(selection, SelectionResult) else SelectionResult(**selection)
    return assess_picks(get_stores(), selection, list(frame_ids), iteration=iteration)
