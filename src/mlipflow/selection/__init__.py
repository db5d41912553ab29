"""Selection: trust windows on committee spread, descriptors (SOAP, MACE), diversity (FPS, PCA + k-means), dedup.

:class:`SelectorMaker` chains them with a budget per iteration and per family and records why each frame was
picked.

Names are loaded on first use (see ``mlipflow._lazy``).
"""

from __future__ import annotations

from mlipflow._lazy import lazy_exports

_EXPORTS = {
    "Deduplicator": "mlipflow.selection.dedup",
    "DedupResult": "mlipflow.selection.dedup",
    "DescriptorCache": "mlipflow.selection.descriptors",
    "MaceDescriptor": "mlipflow.selection.descriptors",
    "SoapDescriptor": "mlipflow.selection.descriptors",
    "frame_hash": "mlipflow.selection.descriptors",
    "ClusterSelector": "mlipflow.selection.diversity",
    "Pick": "mlipflow.selection.diversity",
    "farthest_point_sampling": "mlipflow.selection.diversity",
    "select_diverse": "mlipflow.selection.diversity",
    "PickAssessment": "mlipflow.selection.schemas",
    "SelectedFrame": "mlipflow.selection.schemas",
    "SelectionResult": "mlipflow.selection.schemas",
    "SelectorMaker": "mlipflow.selection.jobs",
    "assess_picks": "mlipflow.selection.assessment",
    "dataset_reference": "mlipflow.selection.reference",
    "picked_structures": "mlipflow.selection.select",
    "select_frames": "mlipflow.selection.select",
    "split_budget": "mlipflow.selection.select",
    "TrustWindow": "mlipflow.selection.uncertainty",
    "TrustWindowSelector": "mlipflow.selection.uncertainty",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
