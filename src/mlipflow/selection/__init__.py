"""Selection: trust windows on committee spread, descriptors (SOAP, MACE), diversity (FPS, PCA + k-means), dedup.

:class:`SelectorMaker` chains them with a budget per iteration and per family and records why each frame was
picked.
"""

from mlipflow.selection.dedup import Deduplicator, DedupResult
from mlipflow.selection.descriptors import DescriptorCache, MaceDescriptor, SoapDescriptor, frame_hash
from mlipflow.selection.diversity import ClusterSelector, Pick, farthest_point_sampling, select_diverse
from mlipflow.selection.jobs import (
    SelectedFrame,
    SelectionResult,
    SelectorMaker,
    picked_structures,
    select_frames,
    split_budget,
)
from mlipflow.selection.uncertainty import TrustWindow, TrustWindowSelector

__all__ = [
    "ClusterSelector",
    "DedupResult",
    "Deduplicator",
    "DescriptorCache",
    "MaceDescriptor",
    "Pick",
    "SelectedFrame",
    "SelectionResult",
    "SelectorMaker",
    "SoapDescriptor",
    "TrustWindow",
    "TrustWindowSelector",
    "farthest_point_sampling",
    "frame_hash",
    "picked_structures",
    "select_diverse",
    "select_frames",
    "split_budget",
]
