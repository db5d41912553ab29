"""Jobs of the dataset: freeze labeled frames into an immutable version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobflow import Maker, job

from mlipflow.data.schemas import DatasetVersionDoc


def _frame_ids(summary: Any) -> list[str]:
    return list(summary.get("frame_ids", []) if isinstance(summary, dict) else getattr(summary, "frame_ids", []))


@job(output_schema=DatasetVersionDoc)
def freeze_version(
    name: str,
    label_summaries: Sequence[Any],
    parent: str | None = None,
    seed: int = 0,
    fractions: dict[str, float] | None = None,
    note: str = "",
    minimum: dict[str, int] | None = None,
) -> DatasetVersionDoc:
    """Freeze the labeled frames named by labeling summaries (on top of ``parent``) into a new version.

    Frames that failed or were filtered are left out (they keep their reason in the frames collection).
    Isolated-atom frames (family ``isolated_atom``) become the version's E0 labels, not training frames.
    Splits are drawn per group of correlated frames, stratified by family (``minimum`` frames of
    ``valid``/``test`` per family first, see :meth:`~mlipflow.data.dataset.Dataset.create_version`).
    Returns a small document: the version id, split counts, and how many frames were left out.
    """
    from mlipflow.data.dataset import Dataset
    from mlipflow.data.frames import ISOLATED_ATOM
    from mlipflow.storage import get_stores

    dataset = Dataset(get_stores())
    wanted = list(dict.fromkeys(i for summary in label_summaries for i in _frame_ids(summary)))
    labeled, isolated = [], {}
    for d in dataset.frames.find({"_id": {"$in": wanted}, "status": "labeled"},
                                 {"_id": 1, "provenance.family": 1, "structure.sites": 1}):
        sites = (d.get("structure") or {}).get("sites") or []
        if (d.get("provenance") or {}).get("family") == ISOLATED_ATOM and len(sites) == 1:
            isolated[sites[0]["species"][0]["element"]] = d["_id"]  # an E0 label, not a training frame
        else:
            labeled.append(d["_id"])
    version = dataset.create_version(name, frame_ids=labeled, parent=parent, seed=seed, fractions=fractions,
                                     note=note, isolated_atoms=isolated, minimum=minimum)
    return DatasetVersionDoc(version=version.id, counts=version.counts, families=version.families,
                             left_out=len(wanted) - len(labeled), labelers=version.labelers,
                             isolated_atoms=version.isolated_atoms)


@dataclass
class DatasetVersionMaker(Maker):
    """Freeze the frames labeled by one or more labeling flows into a dataset version.

    Parameters
    ----------
    name
        Job name.
    dataset_name
        Name of the dataset (versions of one campaign share it).
    seed
        Seed of the train/valid/test assignment of new frames.
    fractions
        Split fractions of new frames (default 0.8/0.1/0.1).
    minimum
        Frames per family that ``valid``/``test`` get first (e.g. ``{"valid": 4, "test": 4}``).
    """

    name: str = "dataset version"
    dataset_name: str = "dataset"
    seed: int = 0
    fractions: dict[str, float] | None = field(default=None)
    minimum: dict[str, int] | None = field(default=None)

    def make(self, label_summaries: Sequence[Any], parent: str | None = None, note: str = ""):
        """The job; ``label_summaries`` are labeling outputs (or references to them)."""
        new = freeze_version(self.dataset_name, list(label_summaries), parent=parent, seed=self.seed,
                             fractions=self.fractions, note=note, minimum=self.minimum)
        new.name = self.name
        return new
