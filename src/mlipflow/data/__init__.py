"""The dataset: labeled frames, content hashes, immutable versions, extxyz and ASE-db I/O."""

from mlipflow.data.dataset import AddResult, Dataset, DatasetVersion, assign_split
from mlipflow.data.frames import LabeledFrame, LabelerInfo, Provenance
from mlipflow.data.hashing import content_hash, settings_hash, structure_hash
from mlipflow.data.io import export_extxyz, import_file, read_labeled_ase_db, read_labeled_extxyz

__all__ = [
    "AddResult",
    "Dataset",
    "DatasetVersion",
    "LabeledFrame",
    "LabelerInfo",
    "Provenance",
    "assign_split",
    "content_hash",
    "export_extxyz",
    "import_file",
    "read_labeled_ase_db",
    "read_labeled_extxyz",
    "settings_hash",
    "structure_hash",
]
