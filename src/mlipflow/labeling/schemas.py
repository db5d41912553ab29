"""Documents of the labeling stage (what its jobs return): ids and counts, never labels."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field


class LabelSummary(BaseModel):
    """What a labeling batch did (a small document: ids and counts, no labels).

    ``counts`` keys: ``labeled`` (new labels), ``reused`` (already labeled before), ``failed`` (gave up after
    ``max_attempts``), ``filtered`` (label kept but rejected by a sanity filter), ``in_flight`` (running under
    another live claim, not started again), ``retry_later`` (failed, attempts left).
    """

    labeler: str = Field(description="labeler description, e.g. `chgnet 0.3.0 (surrogate)`")
    labeler_hash: str = Field(description="hash of the labeler's name, version and settings")
    frame_ids: list[str] = Field(default_factory=list, description="frame ids in input order")
    counts: dict[str, int] = Field(default_factory=dict, description="frames per outcome")
    calculator_calls: int = Field(0, description="calls of the labeler's calculation")
    seconds: float = Field(0.0, description="wall time (s)")

    @classmethod
    def merge(cls, summaries: Sequence[LabelSummary | dict[str, Any]]) -> LabelSummary:
        items = [s if isinstance(s, LabelSummary) else cls(**s) for s in summaries]
        if not items:
            return cls(labeler="", labeler_hash="")
        counts: Counter[str] = Counter()
        for s in items:
            counts.update(s.counts)
        return cls(
            labeler=items[0].labeler,
            labeler_hash=items[0].labeler_hash,
            frame_ids=[i for s in items for i in s.frame_ids],
            counts=dict(counts),
            calculator_calls=sum(s.calculator_calls for s in items),
            seconds=sum(s.seconds for s in items),
        )
