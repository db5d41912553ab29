"""Document type of the structures stage's output (what a structure-set job returns to the JobStore)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymatgen.core import Structure


class StructureSetDoc(BaseModel):
    """The cells of a structure section, with counts per family and one preview-table row per cell."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    structures: list[Structure] = Field(default_factory=list,
                                        description="cells with properties['provenance'] (lengths Å)")
    counts: dict[str, int] = Field(default_factory=dict, description="cells per structure family")
    rows: list[dict[str, Any]] = Field(default_factory=list, description="the preview table, one row per cell")
