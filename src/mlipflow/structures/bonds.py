"""Pair distances of crystals and the pair-specific distance rules built on them.

A bulk crystal defines, for every element pair it holds, its shortest interatomic distance ("bulk bond
length" for cation-anion pairs, the shortest like-pair distance for the others).  The generators use these as
the yardstick of overlap: a generated cell is acceptable when every pair ``(a, b)`` is at least ``fraction`` x
the bulk distance of ``(a, b)`` (default 0.8), not when it passes one cutoff for all pairs (an O-O contact at
1.5 Å passes a cutoff made for Li-O bonds).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
from pymatgen.core import Structure

from mlipflow.errors import StructureError

PairKey = tuple[str, str]


def pair_key(a: str, b: str) -> PairKey:
    """The sorted element pair ``(a, b)``."""
    return (a, b) if a <= b else (b, a)


def shortest_pair_distances(structure: Structure, max_radius: float = 8.0) -> dict[PairKey, float]:
    """Shortest distance (Å) of every element pair of a periodic structure (images included).

    Parameters
    ----------
    structure
        An ordered periodic structure.
    max_radius
        Search radius (Å); pairs farther apart than this everywhere are left out.
    """
    if not structure.is_ordered:
        raise StructureError(f"{structure.composition.reduced_formula} has partial occupancies; order it first")
    centre, neigh, _, dist = structure.get_neighbor_list(max_radius)
    symbols = np.array([s.specie.symbol for s in structure])
    out: dict[PairKey, float] = {}
    keep = dist > 1e-8
    for i, j, d in zip(centre[keep], neigh[keep], dist[keep], strict=True):
        k = pair_key(symbols[i], symbols[j])
        if d < out.get(k, np.inf):
            out[k] = float(d)
    return out


def pair_floors(reference: Mapping[PairKey, float], elements: list[str] | set[str], fraction: float = 0.8,
                default: float | None = None) -> dict[PairKey, float]:
    """Distance floors (Å): ``fraction`` x the reference distance of each pair of ``elements``.

    Pairs missing from ``reference`` get ``fraction`` x the smallest reference distance of any pair that
    contains one of the two elements (or ``default`` if given).
    """
    out = {}
    for a, b in itertools.combinations_with_replacement(sorted(set(elements)), 2):
        k = pair_key(a, b)
        if k in reference:
            out[k] = fraction * reference[k]
        elif default is not None:
            out[k] = default
        else:
            near = [d for (x, y), d in reference.items() if {x, y} & {a, b}]
            out[k] = fraction * min(near or list(reference.values()))
    return out


def pair_matrix(symbols: list[str] | np.ndarray, floors: Mapping[PairKey, float]) -> np.ndarray:
    """The ``n x n`` matrix of floors for atoms with these ``symbols``."""
    symbols = list(symbols)
    kinds = sorted(set(symbols))
    table = np.array([[floors.get(pair_key(a, b), 0.0) for b in kinds] for a in kinds])
    idx = np.array([kinds.index(s) for s in symbols])
    return table[np.ix_(idx, idx)]


def closest_violation(structure: Structure, floors: Mapping[PairKey, float]) -> tuple[float, int, int, float]:
    """The pair with the smallest ratio distance / floor.

    Returns
    -------
    ratio, i, j, distance
        ``ratio < 1`` means the pair ``(i, j)`` (distance in Å) is closer than its floor.  ``(inf, -1, -1, inf)``
        when no pair is within the largest floor.
    """
    cutoff = max(floors.values()) if floors else 0.0
    if len(structure) < 2 or cutoff <= 0:
        return np.inf, -1, -1, np.inf
    centre, neigh, _, dist = structure.get_neighbor_list(cutoff)
    if not len(dist):
        return np.inf, -1, -1, np.inf
    symbols = [s.specie.symbol for s in structure]
    floor = np.array([floors.get(pair_key(symbols[i], symbols[j]), 0.0) for i, j in zip(centre, neigh, strict=True)])
    ratio = np.where(floor > 0, dist / np.where(floor > 0, floor, 1.0), np.inf)
    k = int(np.argmin(ratio))
    return float(ratio[k]), int(centre[k]), int(neigh[k]), float(dist[k])


__all__ = ["closest_violation", "pair_floors", "pair_key", "pair_matrix", "shortest_pair_distances"]
