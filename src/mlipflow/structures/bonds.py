"""Pair distances of crystals and the pair-specific distance rules built on them.

A bulk crystal defines, for every element pair it holds, its shortest interatomic distance ("bulk bond
length" for cation-anion pairs, the shortest like-pair distance for the others).  The generators use these as
the yardstick of overlap: a generated cell is acceptable when every pair ``(a, b)`` is at least ``fraction`` x
the bulk distance of ``(a, b)`` (default 0.8), not when it passes one cutoff for all pairs (an O-O contact at
1.5 Å passes a cutoff made for Li-O bonds).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping

import numpy as np
from pymatgen.core import Structure

from mlipflow.errors import StructureError

PairKey = tuple[str, str]

#: Elements that are anions in the battery materials here; two of them closer than :data:`ANION_FLOOR` are broken
#: (the shortest real contact is a peroxide O-O bond, 1.45-1.5 Å).
ANIONS = frozenset({"N", "O", "F", "S", "Cl", "Se", "Br", "I"})
ANION_FLOOR = 1.35  # Å
COVALENT_FRACTION = 0.6


def default_pair_floor(a: str, b: str, covalent_fraction: float = COVALENT_FRACTION,
                       anion_floor: float = ANION_FLOOR) -> float:
    """The default closest allowed distance (Å) of an element pair, the one rule of the MD monitor and the
    pre-labeling filter: ``covalent_fraction`` x the sum of ASE's covalent radii, and at least ``anion_floor``
    between two anions (0.5 x covalent radii alone allowed O-O at 0.66 Å)."""
    from ase.data import chemical_symbols, covalent_radii

    floor = covalent_fraction * float(covalent_radii[chemical_symbols.index(a)]
                                      + covalent_radii[chemical_symbols.index(b)])
    if a in ANIONS and b in ANIONS:
        floor = max(floor, anion_floor)
    return floor


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
        k = pair_key(str(symbols[i]), str(symbols[j]))
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


def neighbor_pairs(cart: np.ndarray, matrix: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``(i, j, distance)`` closer than ``cutoff`` (Å) of a 3D-periodic cell given as arrays.

    ``cart`` (n x 3, Å) and ``matrix`` (3 x 3, Å, rows are the cell vectors); pymatgen's compiled neighbour search
    without building a Structure (the inner loop of the grain-boundary translation search).
    """
    from pymatgen.optimization.neighbors import find_points_in_spheres

    cart = np.ascontiguousarray(cart, dtype=float)
    centre, neigh, _, dist = find_points_in_spheres(
        cart, cart, r=float(cutoff), pbc=np.ones(3, dtype=np.int64), lattice=np.ascontiguousarray(matrix, float),
        tol=1e-8)
    keep = ~((centre == neigh) & (dist <= 1e-8))
    return centre[keep], neigh[keep], dist[keep]


def min_floor_ratio(cart: np.ndarray, matrix: np.ndarray, floor_matrix: np.ndarray) -> float:
    """Smallest distance / floor over all pairs (``floor_matrix`` from :func:`pair_matrix`); inf if none is near."""
    cutoff = float(floor_matrix.max())
    if cutoff <= 0 or len(cart) < 2:
        return float(np.inf)
    i, j, d = neighbor_pairs(cart, matrix, cutoff)
    if not len(d):
        return float(np.inf)
    f = floor_matrix[i, j]
    ok = f > 0
    return float(np.min(d[ok] / f[ok])) if ok.any() else float(np.inf)


def point_charge_energy(cart: np.ndarray, matrix: np.ndarray, charges: np.ndarray, cutoff: float = 9.0,
                        alpha: float = 0.25) -> float:
    """Energy (eV) of point charges (e) by the damped, shifted Wolf summation (``cutoff`` Å, ``alpha`` 1/Å).

    Ranks rigid-body translations of boundaries and interfaces: on the Li2O Σ5 boundaries its ranking matches
    pymatgen's Ewald sum (Spearman 0.999, the same minimum) at 1/15 of the cost.
    """
    from scipy.special import erfc

    q = np.asarray(charges, float)
    centre, neigh, d = neighbor_pairs(cart, matrix, cutoff)
    shift = erfc(alpha * cutoff) / cutoff
    energy = 0.5 * np.sum(q[centre] * q[neigh] * (erfc(alpha * d) / d - shift))
    energy -= np.sum(q**2) * (0.5 * shift + alpha / np.sqrt(np.pi))
    return float(14.399645 * energy)


def molecular_bonds(structure: Structure, scale: float = 1.2) -> dict[PairKey, float]:
    """Covalent bonds of molecular units (CO3, PS4, PO4, ...): pair -> bulk bond length (Å).

    A pair of non-metals counts when the bulk holds it closer than ``scale`` x the sum of their covalent radii
    (Cordero et al.); bonds to metals (Li, Co, La, ...) are ionic and never count.
    """
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
    from pymatgen.core import Element

    out = {}
    for (a, b), d in shortest_pair_distances(structure, 3.0).items():
        ea, eb = Element(a), Element(b)
        if ea.is_metal or eb.is_metal:
            continue
        if d < scale * (CovalentRadius.radius.get(a, 1.5) + CovalentRadius.radius.get(b, 1.5)):
            out[(a, b)] = d
    return out


def molecular_units(structure: Structure, bonds: Mapping[PairKey, float], tolerance: float = 1.25
                    ) -> list[list[int]]:
    """Groups of atom indices joined by ``bonds`` (within ``tolerance`` x the bond length); single atoms too."""
    n = len(structure)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if bonds:
        symbols = [s.specie.symbol for s in structure]
        i_, j_, d_ = neighbor_pairs(structure.cart_coords, structure.lattice.matrix,
                                    tolerance * max(bonds.values()))
        for i, j, d in zip(i_, j_, d_, strict=True):
            length = bonds.get(pair_key(symbols[i], symbols[j]))
            if length is not None and d <= tolerance * length:
                parent[find(int(i))] = find(int(j))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def unit_formulas(structure: Structure, units: list[list[int]]) -> Counter:
    """How many units of each reduced formula (``CO3``, ``O``, ``Li``...) a structure holds."""
    out: Counter = Counter()
    for u in units:
        counts = Counter(structure[i].specie.symbol for i in u)
        out["".join(f"{el}{'' if n == 1 else n}" for el, n in sorted(counts.items()))] += 1
    return out


def unit_centres(formulas: set[str] | Counter) -> dict[str, str]:
    """Formula -> centre element (the one occurring once, e.g. C of CO3) of multi-atom units."""
    import re

    out = {}
    for formula in formulas:
        counts = Counter({m[0]: int(m[1] or 1) for m in re.findall(r"([A-Z][a-z]?)(\d*)", formula)})
        if sum(counts.values()) > 1:
            out[formula] = min(counts, key=lambda el: (counts[el], el))
    return out


def reunite_units(s: Structure, bonds: Mapping[PairKey, float], repeat: np.ndarray, expected: set[str],
                  members: set[int] | None = None, tolerance: float = 1.25) -> int:
    """Move lone ligand atoms by ``+repeat`` or ``-repeat`` (Å) back to the molecular unit they were cut from.

    A cell cut from a crystal by planes (a slab, a grain) holds whole repeats of the crystal, so a unit (PS4, CO3)
    cut by one plane has its missing ligands one ``repeat`` away, at the other plane.  Each lone ligand (a unit of
    one atom that is not a centre element) that lands within ``tolerance`` x the bond length of the centre of an
    incomplete unit after the move is moved there (in place).  ``members`` limits the atoms considered (one
    grain).  Returns the number of atoms moved.
    """
    centres = set(unit_centres(expected).values())
    allowed = set(range(len(s))) if members is None else set(members)
    moved_total = 0
    for _ in range(4):
        units = molecular_units(s, bonds, tolerance)
        broken = [u for u in units if unit_formulas(s, [u]).most_common(1)[0][0] not in expected]
        heads = [i for u in broken for i in u if s[i].specie.symbol in centres and i in allowed]
        lone = [u[0] for u in units if len(u) == 1 and u[0] in allowed and s[u[0]].specie.symbol not in centres]
        moved = 0
        for j in lone:
            el = s[j].specie.symbol
            for h in heads:
                length = bonds.get(pair_key(el, s[h].specie.symbol))
                if length is None:
                    continue
                target = next((s[j].coords + sign * repeat for sign in (1.0, -1.0)
                               if s.lattice.get_distance_and_image(
                                   s.lattice.get_fractional_coords(s[j].coords + sign * repeat), s[h].frac_coords)[0]
                               <= tolerance * length), None)
                if target is not None:
                    s.replace(j, s[j].species, coords=target, coords_are_cartesian=True, properties=s[j].properties)
                    moved += 1
                    break
        moved_total += moved
        if not moved:
            break
    return moved_total


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


__all__ = [
    "ANIONS",
    "closest_violation",
    "default_pair_floor",
    "min_floor_ratio",
    "molecular_bonds",
    "molecular_units",
    "neighbor_pairs",
    "pair_floors",
    "pair_key",
    "pair_matrix",
    "point_charge_energy",
    "reunite_units",
    "shortest_pair_distances",
    "unit_centres",
    "unit_formulas",
]
