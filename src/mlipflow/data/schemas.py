"""Documents of the dataset stage (what its jobs return)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DatasetVersionDoc(BaseModel):
    """Output of :func:`~mlipflow.data.jobs.freeze_version`: a new (or identical existing) dataset version."""

    version: str = Field(description="dataset version id")
    counts: dict[str, int] = Field(default_factory=dict, description="frames per split")
    families: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="structure family -> split -> frames (and `<split>_groups`)")
    left_out: int = Field(0, description="frames of the label summaries not in the version (failed, filtered, E0s)")
    labelers: dict[str, int] = Field(default_factory=dict, description="labeler description -> frames")
    isolated_atoms: dict[str, str] = Field(default_factory=dict, description="element -> isolated-atom frame id")
