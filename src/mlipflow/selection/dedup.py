"""Drop candidates that are already in the dataset (same content) or sit on top of a dataset frame.

Two checks, cheapest first:

* **hash**: the candidate's structure hash (:func:`~mlipflow.selection.descriptors.frame_hash`, identical to
  the dataset's ``structure_hash``) equals a dataset frame's, or another candidate's (in-pool duplicates);
* **descriptor distance**: the candidate's descriptor is within ``min_distance`` (Euclidean, descriptor units)
  of a dataset frame's descriptor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from mlipflow.data.hashing import structure_hash

logger = logging.getLogger(__name__)


@dataclass
class DedupResult:
    """Which candidates survive, and why the others were dropped (``reasons[i]`` is ``None`` for kept ones)."""

    keep: np.ndarray
    reasons: list[str | None]

    @property
    def n_dropped(self) -> int:
        return int((~self.keep).sum())


def dataset_structure_hashes(frames_collection: object, query: dict | None = None) -> set[str]:
    """Structure hashes of the frames in a frames collection (labeled frames by default)."""
    out = set()
    for doc in frames_collection.find(query or {"status": "labeled"}, {"structure": 1}):  # type: ignore[attr-defined]
        out.add(structure_hash(Structure.from_dict(doc["structure"])))
    return out


@dataclass
class Deduplicator:
    """Drop candidates equal to, or too close to, dataset frames and to each other.

    Parameters
    ----------
    min_distance
        Descriptor distance below which a candidate is "on top of" a dataset frame (descriptor units;
        ``None`` disables the check).
    """

    min_distance: float | None = None

    def run(self, hashes: Sequence[str], known_hashes: Iterable[str] = (), descriptors: np.ndarray | None = None,
            known_descriptors: np.ndarray | None = None) -> DedupResult:
        """Decide per candidate.

        Parameters
        ----------
        hashes
            Candidate structure hashes.
        known_hashes
            Structure hashes of dataset frames.
        descriptors
            Candidate descriptors (n, dim), for the distance check.
        known_descriptors
            Dataset descriptors (m, dim).
        """
        known = set(known_hashes)
        keep = np.ones(len(hashes), dtype=bool)
        reasons: list[str | None] = [None] * len(hashes)
        seen: dict[str, int] = {}
        for i, h in enumerate(hashes):
            if h in known:
                keep[i], reasons[i] = False, "dedup: same structure already in the dataset"
            elif h in seen:
                keep[i], reasons[i] = False, f"dedup: same structure as candidate {seen[h]}"
            else:
                seen[h] = i
        if (self.min_distance is not None and descriptors is not None and known_descriptors is not None
                and len(known_descriptors) and keep.any()):
            from sklearn.neighbors import NearestNeighbors

            nn = NearestNeighbors(n_neighbors=1).fit(np.asarray(known_descriptors, dtype=np.float32))
            rows = np.flatnonzero(keep)
            dist, _ = nn.kneighbors(np.asarray(descriptors, dtype=np.float32)[rows])
            for i, d in zip(rows, dist[:, 0], strict=True):
                if d < self.min_distance:
                    keep[i] = False
                    reasons[i] = f"dedup: descriptor distance {d:.3g} to a dataset frame < {self.min_distance:g}"
        if (~keep).any():
            logger.info("dedup dropped %d of %d candidates", int((~keep).sum()), len(hashes))
        return DedupResult(keep=keep, reasons=reasons)
