"""Grain boundaries: CSL Σ tilt and twist bicrystals a materials scientist would accept.

How a boundary is built (each step is recorded in the cell's provenance):

1. **The two grains** come from pymatgen's ``GrainBoundaryGenerator`` (cubic, tetragonal, hexagonal and
   rhombohedral lattices; the axial ratio of non-cubic lattices from ``get_ratio``) *without* its overlap
   removal, so each grain holds whole conventional cells: the bicrystal is stoichiometric and neutral.  The
   periodic cell holds two boundaries (in the middle and at the cell edge along c).
2. **Rigid-body translation search**: grain 2 is shifted in the boundary plane over a grid covering the unique
   shifts (the plane cell of the sum of both grains' in-plane lattices; a shift by a lattice vector of either
   grain gives the same bicrystal) and the grains are moved apart or together along the normal by each of
   ``expansions`` (Å, at both boundaries).
3. **Pair-specific overlap rule**: a translation is kept only if every pair (A, B) is at least
   ``overlap_fraction`` (default 0.8) x the shortest A-B distance of the bulk crystal.  If no translation passes,
   the atoms of the closest pairs are removed and whole formula units are completed by removing the nearest
   further ions, so the cell stays stoichiometric and neutral (the removed formula units are stated).
4. **Ranking**: the surviving translations are ranked by ``rank_by``: ``coulomb`` (point-charge energy of the
   formal oxidation states by a Wolf summation, no model, the default), ``geometry`` (the largest smallest
   distance ratio) or a surrogate calculator (``chgnet`` and the other names of
   :class:`~mlipflow.labeling.surrogate.SurrogateLabeler`, or an ASE calculator object), which evaluates the
   ``max_evaluations`` best by point-charge energy; the lowest ``n_keep`` are kept, optionally relaxed
   (positions only, ``relax_steps`` FIRE steps).  With a calculator the boundary energy ``gb_energy_J_m2 = (E -
   N e_bulk) / (2 A)`` is recorded (J/m²; e_bulk from the bulk crystal at the same lattice constant with the
   same calculator).

Asking for a Σ without a plane gives the symmetric *tilt* boundary (``gb_type="tilt"``, the first tilt plane) on
cubic lattices; on non-cubic lattices only twist boundaries (plane normal to the axis) are enumerated.  For
rhombohedral crystals (LiCoO2) axes and planes are given in the conventional hexagonal setting ([0, 0, 1] is the
c axis) and converted to pymatgen's rhombohedral indices.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from functools import reduce
from typing import Any, Literal

import numpy as np
from monty.json import MSONable
from pymatgen.core import Structure
from pymatgen.core.interface import GrainBoundaryGenerator
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from mlipflow.errors import StructureError
from mlipflow.structures.bonds import (
    closest_violation,
    min_floor_ratio,
    molecular_bonds,
    molecular_units,
    pair_floors,
    pair_key,
    pair_matrix,
    point_charge_energy,
    reunite_units,
    shortest_pair_distances,
    unit_formulas,
)
from mlipflow.structures.provenance import clean_copy, net_charge, perpendicular_widths, tag

logger = logging.getLogger(__name__)

_MOD = "mlipflow.structures.grain_boundaries"
EV_PER_A2_TO_J_PER_M2 = 16.021766208

GBType = Literal["tilt", "twist", "any"]
_TYPE_KEYS = {
    "tilt": ("Symmetric tilt",),
    "twist": ("Twist",),
    "any": ("Symmetric tilt", "Twist", "Normal tilt", "Mixed"),
}
_LATTICES = {"c": "cubic", "t": "tetragonal", "o": "orthorhombic", "h": "hexagonal", "r": "rhombohedral"}
_BUILD_GAP = 3.0  # Å between the grains when pymatgen builds them (no atom is merged); undone by the search


@dataclass
class GBCandidate:
    """A CSL boundary before it is built: Σ, plane, misorientation (degrees) and estimated atom count."""

    sigma: int
    rotation_axis: tuple[int, int, int]
    rotation_angle: float  # degrees
    plane: tuple[int, int, int] | None
    gb_type: str
    n_atoms_estimate: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TranslationSearch(MSONable):
    """Settings of the rigid-body translation search (see the module docstring).

    Parameters
    ----------
    in_plane_step
        Grid spacing (Å) of the in-plane shifts over the unique shift cell.
    expansions
        Changes of the spacing at both boundaries (Å; negative brings the grains closer).
    rank_by
        ``coulomb``, ``geometry``, a surrogate calculator name (``chgnet``, ...) or an ASE calculator.
    n_keep
        Number of distinct translations kept (lowest ranking energy first).
    max_evaluations
        Calculator evaluations (the best translations by point-charge energy, or by distance ratio when the crystal
        has no oxidation states).
    relax_steps
        FIRE steps (positions only, fmax ``fmax``) with the ranking calculator on each kept cell; 0: none.
    fmax
        Force convergence of that relaxation (eV/Å).
    """

    in_plane_step: float = 0.6
    expansions: tuple[float, ...] = (0.0, 0.3, 0.6, 1.0)
    rank_by: Any = "coulomb"
    n_keep: int = 1
    max_evaluations: int = 12
    relax_steps: int = 0
    fmax: float = 0.05

    def describe(self) -> dict[str, Any]:
        rank = self.rank_by if isinstance(self.rank_by, str) else type(self.rank_by).__name__
        return {**{k: v for k, v in asdict(self).items() if k != "rank_by"}, "rank_by": rank}


def _conventional(structure: Structure) -> Structure:
    return SpacegroupAnalyzer(clean_copy(structure), symprec=0.1).get_conventional_standard_structure()


def _metrically_cubic(structure: Structure, tol: float = 1e-3) -> bool:
    a, b, c = structure.lattice.abc
    return max(abs(b / a - 1), abs(c / a - 1)) < tol and all(abs(x - 90) < 0.1 for x in structure.lattice.angles)


@dataclass
class _Lattice:
    """The conventional cell, pymatgen's lattice type, the axial ratio and the generator of a crystal."""

    conv: Structure
    lat_type: str
    ratio: list[int] | None
    generator: GrainBoundaryGenerator = field(repr=False)


def _lattice(structure: Structure, entry: str) -> _Lattice:
    conv = _conventional(structure)
    if not _metrically_cubic(conv) and _metrically_cubic(structure):
        conv = clean_copy(structure)  # a low-symmetry ordering (P1) whose standard cell is not the cube
    if _metrically_cubic(conv):
        # an ordered cell of a cubic average structure (Li-ordered garnet, argyrodite: I4_1/acd, P1): the CSL is a
        # property of the lattice, which is cubic; pymatgen reads the lattice type from the atoms, so it is built
        # on a one-atom cubic proxy and then given the real cell
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gen = GrainBoundaryGenerator(Structure(conv.lattice, ["Li"], [[0, 0, 0]]), symprec=0.1)
        gen.initial_structure = conv
        return _Lattice(conv, "c", None, gen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            gen = GrainBoundaryGenerator(conv, symprec=0.1)
        except (ValueError, RuntimeError) as exc:
            raise StructureError(f"{entry}: no CSL grain boundaries for {structure.composition.reduced_formula}: "
                                 f"{exc}") from None
    ratio = gen.get_ratio(max_denominator=5) if gen.lat_type in ("t", "h", "r", "o") else None
    return _Lattice(conv, gen.lat_type, ratio, gen)


def _to_generator_indices(lat: _Lattice, hkl: Sequence[int], kind: str) -> tuple[int, ...]:
    """Conventional-setting axis (kind ``axis``) or plane (``plane``) in the indices pymatgen uses.

    Only rhombohedral lattices differ: pymatgen works in the primitive rhombohedral basis, related to the
    hexagonal one by a_r = M a_h with M the obverse (or reverse) setting matrix, identified from the metrics.
    """
    v = np.asarray(hkl, float)
    if lat.lat_type != "r":
        return tuple(int(i) for i in hkl)
    prim = SpacegroupAnalyzer(lat.conv, symprec=0.1).get_primitive_standard_structure()
    g_c, g_p = lat.conv.lattice.metric_tensor, prim.lattice.metric_tensor
    for m in _R_SETTINGS:
        if np.allclose(m @ g_c @ m.T, g_p, atol=1e-3 * float(np.abs(g_p).max())) and _is_translation(lat.conv, m):
            comp = v @ np.linalg.inv(m) if kind == "axis" else m @ v
            return _integers(comp)
    raise StructureError("internal: cannot relate the hexagonal and rhombohedral settings")  # pragma: no cover


def _is_translation(conv: Structure, m: np.ndarray) -> bool:
    """Whether the rows of ``m`` (fractions of the conventional vectors) are lattice translations of ``conv``."""
    frac = conv.frac_coords
    for row in m:
        moved = frac + row
        d = moved[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        same = np.array([[a.specie == b.specie for b in conv] for a in conv])
        if not np.all(np.min(np.where(same, np.linalg.norm(d @ conv.lattice.matrix, axis=2), np.inf), axis=1) < 1e-3):
            return False
    return True


#: hexagonal -> rhombohedral basis (rows a_r, b_r, c_r in terms of a_h, b_h, c_h): obverse, reverse, and the
#: permutations pymatgen's standard primitive cell may use
_R_SETTINGS = [np.array(m, float) / 3.0 for m in (
    [[2, 1, 1], [-1, 1, 1], [-1, -2, 1]], [[1, 2, 1], [-2, -1, 1], [1, -1, 1]], [[-1, 1, 1], [2, 1, 1], [-1, -2, 1]],
    [[1, -1, 1], [1, 2, 1], [-2, -1, 1]], [[-1, -2, 1], [2, 1, 1], [-1, 1, 1]], [[2, 1, 1], [-1, -2, 1], [-1, 1, 1]],
    [[-1, 1, 1], [-1, -2, 1], [2, 1, 1]], [[1, -1, 1], [-2, -1, 1], [1, 2, 1]], [[-2, -1, 1], [1, -1, 1], [1, 2, 1]],
    [[1, 2, 1], [1, -1, 1], [-2, -1, 1]], [[-2, -1, 1], [1, 2, 1], [1, -1, 1]], [[-1, -2, 1], [-1, 1, 1], [2, 1, 1]],
)]


def _integers(values: np.ndarray) -> tuple[int, ...]:
    fr = [Fraction(float(x)).limit_denominator(12) for x in values]
    den = reduce(math.lcm, [f.denominator for f in fr], 1)
    ints = [round(f * den) for f in fr]
    g = reduce(math.gcd, [abs(i) for i in ints if i], 0) or 1
    return tuple(i // g for i in ints)


def _enum_sigma(lat: _Lattice, axis: tuple[int, ...], max_sigma: int, entry: str) -> dict[int, list[float]]:
    g = GrainBoundaryGenerator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if lat.lat_type == "c":
            found = g.enum_sigma_cubic(max_sigma, axis)
        elif lat.lat_type == "r":
            found = g.enum_sigma_rho(max_sigma, axis, lat.ratio)
        elif lat.lat_type == "h":
            found = g.enum_sigma_hex(max_sigma, axis, lat.ratio)
        elif lat.lat_type == "t":
            found = g.enum_sigma_tet(max_sigma, axis, lat.ratio)
        else:
            found = g.enum_sigma_ort(max_sigma, axis, lat.ratio)
    return {int(k): sorted(float(a) for a in v) for k, v in found.items() if k > 1}


def possible_sigmas(
    structure: Structure, rotation_axis: Sequence[int], max_sigma: int, entry: str = ""
) -> dict[int, list[float]]:
    """Σ values (≤ ``max_sigma``) and their rotation angles (degrees) for a crystal and rotation axis.

    The axis is given in the conventional cell (hexagonal setting for rhombohedral crystals).
    """
    axis = tuple(int(i) for i in rotation_axis)
    if len(axis) != 3 or not any(axis):
        raise StructureError(f"{entry}: rotation_axis {list(rotation_axis)} must be three integers, not all zero")
    lat = _lattice(structure, entry)
    return _enum_sigma(lat, _to_generator_indices(lat, axis, "axis"), max_sigma, entry)


def _impossible(entry: str, sigma: int, axis: Sequence[int], lat: _Lattice, available: dict, limit: int) -> str:
    name = _LATTICES[lat.lat_type]
    article = "an" if name[0] in "aeiou" else "a"
    return (f"{entry}: Σ{sigma} is impossible for rotation axis {list(axis)} of {article} {name} lattice; "
            f"possible Σ ≤ {limit}: {', '.join(map(str, sorted(available))) or 'none'}")


def list_gb_candidates(
    structure: Structure,
    rotation_axis: Sequence[int] = (1, 0, 0),
    max_sigma: int = 13,
    sigmas: Sequence[int] | None = None,
    gb_type: GBType = "tilt",
    plane_cutoff: int = 3,
    expand_times: int = 1,
    entry: str = "",
) -> list[GBCandidate]:
    """Enumerate CSL boundaries without building them.

    Parameters
    ----------
    structure
        The crystal (cubic, tetragonal, hexagonal or rhombohedral lattice).
    rotation_axis
        Rotation axis [uvw] in the conventional cell (hexagonal setting for rhombohedral crystals).
    max_sigma
        Largest Σ enumerated.
    sigmas
        Keep only these Σ; a Σ that the axis does not allow raises ``StructureError`` listing those it does.
    gb_type
        ``tilt`` (symmetric tilt), ``twist`` or ``any``.  Non-cubic lattices: ``twist`` only.
    plane_cutoff
        Largest Miller index of the boundary planes considered (cubic lattices).
    expand_times
        Repetitions of the CSL cell along the normal per grain (used for the atom-count estimate).
    entry
        Name used in error messages.

    Returns
    -------
    list of GBCandidate
        Sorted by Σ then plane; ``n_atoms_estimate = 2 * expand_times * Σ * N_conventional``.
    """
    lat = _lattice(structure, entry)
    axis = tuple(int(i) for i in rotation_axis)
    if len(axis) != 3 or not any(axis):
        raise StructureError(f"{entry}: rotation_axis {list(rotation_axis)} must be three integers, not all zero")
    gen_axis = _to_generator_indices(lat, axis, "axis")
    limit = max(max_sigma, *(sigmas or [0]))
    available = _enum_sigma(lat, gen_axis, limit, entry)
    wanted = sorted(s for s in available if s <= max_sigma) if sigmas is None else list(sigmas)
    for s in wanted:
        if s not in available:
            raise StructureError(_impossible(entry, s, axis, lat, available, limit))
    if lat.lat_type != "c" and gb_type == "tilt":
        raise StructureError(
            f"{entry}: tilt planes are enumerated for cubic lattices only; {structure.composition.reduced_formula} "
            f"is {_LATTICES[lat.lat_type]}: use gb_type: twist (boundary plane normal to the axis)")
    out = []
    for s in wanted:
        angle = min(available[s])  # the other angles of a Σ give symmetry-equivalent boundaries for cubic lattices
        if lat.lat_type != "c":
            out.append(GBCandidate(s, axis, round(angle, 6), None, "twist", 2 * expand_times * s * len(lat.conv)))
            continue
        planes = GrainBoundaryGenerator.enum_possible_plane_cubic(plane_cutoff, axis, angle)
        seen: set[tuple] = set()
        for key in _TYPE_KEYS[gb_type]:
            for pair in planes.get(key, []):
                plane = tuple(int(i) for i in pair[0])
                family = (key, tuple(sorted(abs(i) for i in plane)))
                if family in seen:
                    continue
                seen.add(family)
                out.append(GBCandidate(s, axis, round(angle, 6), plane, key.lower().replace(" ", "_"),
                                       2 * expand_times * s * len(lat.conv)))
    return out


def _default_plane(lat: _Lattice, axis: tuple[int, int, int], angle: float, gb_type: str, entry: str
                   ) -> tuple[int, ...] | None:
    """The symmetric tilt plane (cubic, ``gb_type`` tilt) or None (twist: normal to the axis)."""
    if gb_type == "twist" or lat.lat_type != "c":
        return None
    planes = GrainBoundaryGenerator.enum_possible_plane_cubic(3, axis, angle)
    keys = _TYPE_KEYS["tilt"] if gb_type == "tilt" else _TYPE_KEYS["any"]
    for key in keys:
        if planes.get(key):
            return tuple(int(i) for i in planes[key][0][0])
    raise StructureError(f"{entry}: no {gb_type} plane with indices ≤ 3 for axis {list(axis)} and angle "
                         f"{angle:.3f}°; give the plane or gb_type: twist")


def _shift_group(s: Structure, top: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Fractional (a, b) in-plane vectors that map grain 1 or grain 2 onto itself (with (0, 0))."""
    frac = s.frac_coords
    species = np.array([x.specie.symbol for x in s])
    out = [np.zeros(2)]
    for grain in (top, ~top):
        idx = np.where(grain)[0]
        symbols, counts = np.unique(species[idx], return_counts=True)
        rare = symbols[np.argmin(counts)]
        ref = idx[species[idx] == rare]
        pts = frac[idx]
        for j in ref[1:]:
            d = frac[j] - frac[ref[0]]
            if abs(d[2]) > 1e-4:  # not in the plane (grain atoms keep their c fraction under in-plane shifts)
                continue
            v = np.array([d[0] % 1.0, d[1] % 1.0, 0.0])
            if any(np.all(np.abs((v[:2] - w + 0.5) % 1.0 - 0.5) < 1e-4) for w in out):
                continue
            moved = pts + v
            diff = moved[:, None, :] - pts[None, :, :]
            diff[:, :, :2] -= np.round(diff[:, :, :2])
            same = species[idx][:, None] == species[idx][None, :]
            dist = np.linalg.norm(diff @ s.lattice.matrix, axis=2)
            if np.all(np.min(np.where(same, dist, np.inf), axis=1) < 1e-3):
                out.append(v[:2])
    return np.array(out)


def _shift_grid(s: Structure, group: np.ndarray, step: float) -> np.ndarray:
    """Fractional (a, b) shifts covering one cell of the lattice generated by ``group`` and (1, 0), (0, 1)."""
    den = reduce(math.lcm, [Fraction(float(x)).limit_denominator(60).denominator for x in group.ravel()], 1)
    gens = [np.array([den, 0]), np.array([0, den])] + [np.round(g * den).astype(int) for g in group if np.any(g)]
    basis = _hnf_2d(np.array(gens))  # rows: integer basis (units of 1/den)
    m = s.lattice.matrix
    u1, u2 = _reduce_2d(basis[0] / den, basis[1] / den, m[:2])
    n1 = max(1, math.ceil(np.linalg.norm(u1[0] * m[0] + u1[1] * m[1]) / step))
    n2 = max(1, math.ceil(np.linalg.norm(u2[0] * m[0] + u2[1] * m[1]) / step))
    return np.array([(i / n1) * u1 + (j / n2) * u2 for i in range(n1) for j in range(n2)])


def _reduce_2d(u1: np.ndarray, u2: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lagrange-Gauss reduction of a 2D basis given in fractions of the in-plane vectors ``ab`` (2 x 3, Å)."""
    def norm(u: np.ndarray) -> float:
        return float(np.linalg.norm(u @ ab))

    while True:
        if norm(u1) > norm(u2):
            u1, u2 = u2, u1
        x = float(np.dot(u1 @ ab, u2 @ ab)) / norm(u1) ** 2
        if abs(x) <= 0.5 + 1e-9:
            return u1, u2
        u2 = u2 - round(x) * u1


def _hnf_2d(rows: np.ndarray) -> np.ndarray:
    """A basis (2 x 2, integer, upper triangular) of the 2D lattice generated by integer ``rows``."""
    work = [[int(x) for x in r] for r in rows if any(r)]
    while sum(1 for r in work if r[0] != 0) > 1:  # Euclid on the first column
        nz = sorted((r for r in work if r[0] != 0), key=lambda r: abs(r[0]))
        p = nz[0]
        work = [p] + [[x - (r[0] // p[0]) * y for x, y in zip(r, p, strict=True)] if r is not p and r[0] != 0
                      else r for r in work if r is not p]
    pivot = next(r for r in work if r[0] != 0)
    g = reduce(math.gcd, [abs(r[1]) for r in work if r is not pivot and r[0] == 0], 0)
    if g == 0:
        raise StructureError("internal: degenerate in-plane lattice")  # pragma: no cover
    if pivot[0] < 0:
        pivot = [-pivot[0], -pivot[1]]
    return np.array([[pivot[0], pivot[1] % g], [0, g]])


@dataclass
class _Trial:
    shift: np.ndarray  # fractional (a, b)
    expansion: float  # Å
    ratio: float
    cart: np.ndarray  # Å
    matrix: np.ndarray  # Å
    coulomb: float | None = None
    energy: float | None = None  # eV, calculator
    _structure: Structure | None = None

    def structure(self, base: Structure) -> Structure:
        if self._structure is None:
            self._structure = Structure(self.matrix, base.species, self.cart, coords_are_cartesian=True,
                                        site_properties=base.site_properties)
        return self._structure


def _place(base: Structure, top: np.ndarray, normal: np.ndarray, shift: np.ndarray, expansion: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian coordinates and cell (Å) with grain 2 shifted in plane and both boundaries opened by expansion."""
    m = base.lattice.matrix.copy()
    move = shift[0] * m[0] + shift[1] * m[1] + (expansion - _BUILD_GAP) * normal
    cart = base.cart_coords.copy()
    cart[top] += move
    m[2] = m[2] + 2 * (expansion - _BUILD_GAP) * normal
    return cart, m


def _coulomb(cart: np.ndarray, matrix: np.ndarray, charges: np.ndarray | None) -> float | None:
    return None if charges is None else point_charge_energy(cart, matrix, charges)


def _oxidation(conv: Structure) -> dict[str, float] | None:
    try:
        guesses = conv.composition.oxi_state_guesses(max_sites=-50)
    except ValueError:
        return None
    if not guesses or all(el.is_metal for el in conv.composition.elements):
        return None
    return {str(k): float(v) for k, v in guesses[0].items()}


def _calculator(rank_by: Any):
    if not isinstance(rank_by, str):
        return rank_by
    from mlipflow.labeling.surrogate import SurrogateLabeler

    return SurrogateLabeler(calculator=rank_by).ase_calculator()


def _energy(structure: Structure, calc) -> float:
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(Structure(structure.lattice, structure.species, structure.frac_coords))
    atoms.calc = calc
    return float(atoms.get_potential_energy())


def _relax(structure: Structure, calc, steps: int, fmax: float) -> tuple[Structure, float]:
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(Structure(structure.lattice, structure.species, structure.frac_coords))
    atoms.calc = calc
    FIRE(atoms, logfile=None).run(fmax=fmax, steps=steps)
    energy = float(atoms.get_potential_energy())
    relaxed = Structure(structure.lattice, structure.species, atoms.get_scaled_positions(),
                        site_properties=structure.site_properties)
    return relaxed, energy


def _remove_overlaps(trial: Structure, floors: dict, conv: Structure, bonds: dict) -> tuple[Structure, int]:
    """Remove the atoms (whole molecular units) of pairs closer than their floors, then complete whole formula
    units with the units nearest the boundary planes; returns the cell and the formula units removed."""
    s = trial.copy()

    def unit_list(x: Structure) -> tuple[list[list[int]], dict[int, int]]:
        units = molecular_units(x, bonds)
        return units, {i: k for k, u in enumerate(units) for i in u}

    units, unit_of = unit_list(s)
    removed = False
    while True:
        ratio, i, j, _ = closest_violation(s, floors)
        if ratio >= 1.0:
            break
        counts = []
        for k in (i, j):  # drop the unit of the atom with more violating neighbours
            neigh = s.get_neighbors(s[k], max(floors.values()))
            counts.append(sum(n.nn_distance < floors[pair_key(s[k].specie.symbol, n.specie.symbol)] for n in neigh))
        k = i if counts[0] > counts[1] else j
        s.remove_sites(sorted(units[unit_of[k]]))
        units, unit_of = unit_list(s)
        removed = True
    if not removed:
        return s, 0
    bulk_units = unit_formulas(conv, molecular_units(conv, bonds))
    g = reduce(math.gcd, bulk_units.values())
    per_fu = {f: n // g for f, n in bulk_units.items()}
    have = unit_formulas(trial, molecular_units(trial, bonds))
    now = unit_formulas(s, units)
    lost = {f: have[f] - now.get(f, 0) for f in per_fu}
    k_units = max(math.ceil(lost[f] / n - 1e-9) for f, n in per_fu.items())
    extra = {f: k_units * n - lost[f] for f, n in per_fu.items()}
    zc = s.frac_coords[:, 2] % 1.0
    depth = np.minimum.reduce([np.abs(zc), np.abs(zc - 0.5), np.abs(zc - 1.0)])
    drop: list[int] = []
    for f, n in extra.items():
        cands = sorted((u for u in units if unit_formulas(s, [u]).most_common(1)[0][0] == f),
                       key=lambda u: float(np.min(depth[u])))
        for u in cands[:n]:
            drop += u
    s.remove_sites(sorted(drop))
    return s, k_units


def _reunite_grains(base: Structure, top: np.ndarray, bonds: dict, expected: set[str], normal: np.ndarray,
                    gap: float) -> int:
    """Molecular units cut where pymatgen cut each grain from the crystal: ligands back to their centres, one
    grain repeat (half the bicrystal's c without the build gaps) away (in place)."""
    if not bonds:
        return 0
    repeat = (base.lattice.matrix[2] - 2 * gap * normal) / 2.0
    moved = 0
    for grain in (top, ~top):
        moved += reunite_units(base, bonds, repeat, expected, members=set(np.where(grain)[0].tolist()))
    return moved


def grain_boundary_translations(
    structure: Structure,
    rotation_axis: Sequence[int],
    rotation_angle: float | None = None,
    sigma: int | None = None,
    plane: Sequence[int] | None = None,
    gb_type: GBType = "tilt",
    min_grain_thickness: float = 10.0,
    overlap_fraction: float = 0.8,
    search: TranslationSearch | None = None,
    min_in_plane: float | None = None,
    max_atoms: int | None = None,
    entry: str = "",
) -> list[Structure]:
    """Build one CSL boundary and return its best rigid-body translations (module docstring).

    Parameters
    ----------
    structure
        The bulk crystal.
    rotation_axis
        Rotation axis [uvw] (conventional cell; hexagonal setting for rhombohedral crystals).
    rotation_angle
        Misorientation (degrees); or give ``sigma`` and the smallest angle of that Σ is used.
    sigma
        CSL Σ (used when ``rotation_angle`` is None).
    plane
        Boundary plane (hkl); default: the symmetric tilt plane (``gb_type="tilt"``, cubic) or the twist plane.
    gb_type
        Used when ``plane`` is None: ``tilt`` or ``twist``.
    min_grain_thickness
        Minimum thickness (Å) of each grain along the normal; the CSL cell is repeated until reached.
    overlap_fraction
        Pair rule: every A-B pair at least this fraction of the bulk's shortest A-B distance.
    search
        :class:`TranslationSearch` settings (default: point-charge ranking, keep 1).
    min_in_plane
        If given, repeat the cell in the boundary plane until both in-plane widths are at least this (Å).
    max_atoms
        Refuse larger cells with a ``StructureError`` naming ``entry``.
    entry
        Name used in error messages.

    Returns
    -------
    list of Structure
        The kept translations, best first; family ``grain_boundary``; provenance holds ``sigma``,
        ``rotation_axis``, ``misorientation`` (degrees), ``plane``, ``gb_type``, ``translation`` (in-plane shift
        in Å along a and b, expansion in Å), ``min_distance_ratio``, ``net_charge`` (0), ``stoichiometric`` (true),
        ``removed_formula_units``, ``search`` and, with a calculator, ``gb_energy_J_m2``.
    """
    search = search or TranslationSearch()
    lat = _lattice(structure, entry)
    conv = lat.conv
    axis = tuple(int(i) for i in rotation_axis)
    gen_axis = _to_generator_indices(lat, axis, "axis")
    if rotation_angle is None:
        if sigma is None:
            raise StructureError(f"{entry}: give rotation_angle or sigma for the grain boundary")
        avail = _enum_sigma(lat, gen_axis, max(sigma, 3), entry)
        if sigma not in avail:
            raise StructureError(_impossible(entry, sigma, axis, lat, avail, max(sigma, 3)))
        rotation_angle = min(avail[sigma])
    if plane is None:
        plane = _default_plane(lat, axis, rotation_angle, gb_type, entry)  # type: ignore[arg-type]
    gb, expand, scale = _csl_bicrystal(lat, axis, rotation_angle, plane, min_grain_thickness, min_in_plane,
                                       max_atoms, entry)
    labels = list(gb.site_properties["grain_label"])
    base = Structure(gb.lattice, gb.species, gb.frac_coords, site_properties={"grain": [
        "top" if lab.startswith("top") else "bottom" for lab in labels]})
    top = np.array([lab.startswith("top") for lab in labels])
    m = base.lattice.matrix
    normal = np.cross(m[0], m[1])
    normal /= np.linalg.norm(normal)
    if np.dot(normal, m[2]) < 0:
        normal = -normal
    bulk_d = shortest_pair_distances(conv, 8.0)
    elements = sorted({sp.symbol for sp in conv.species})
    floors = pair_floors(bulk_d, elements, overlap_fraction)
    bonds = molecular_bonds(conv)
    expected = set(unit_formulas(conv, molecular_units(conv, bonds)))
    _reunite_grains(base, top, bonds, expected, normal, _BUILD_GAP)
    if bonds and set(unit_formulas(base, molecular_units(base, bonds))) - expected:
        raise StructureError(f"{entry}: the grains of the Σ{gb.sigma} boundary cut molecular units that cannot be "
                             "reunited; try another plane or Σ")
    group = _shift_group(base, top, normal)
    shifts = _shift_grid(base, group, search.in_plane_step)
    floor_matrix = pair_matrix([x.specie.symbol for x in base], floors)
    trials: list[_Trial] = []
    for shift in shifts:
        for dz in search.expansions:
            cart, matrix = _place(base, top, normal, shift, dz)
            trials.append(_Trial(shift, float(dz), min_floor_ratio(cart, matrix, floor_matrix), cart, matrix))
    passed, removed_units = _overlap_free(trials, base, floors, conv, bonds)
    if not passed:
        raise StructureError(
            f"{entry}: no translation of the Σ{gb.sigma} {plane} boundary keeps every pair ≥ {overlap_fraction} x "
            "its bulk distance, even after removing overlapping formula units; lower overlap_fraction or widen "
            "expansions")
    if removed_units:
        logger.info("%s: no translation was free of overlaps; removed %d formula units", entry, removed_units)
    calc = None if search.rank_by in ("coulomb", "geometry") else _calculator(search.rank_by)
    kept, e_bulk = _rank_translations(passed, base, conv, search, calc)
    area = float(np.linalg.norm(np.cross(m[0], m[1])))
    out = []
    for rank, t in enumerate(kept):
        s, energy = t.structure(base).copy(), t.energy
        if calc is not None and search.relax_steps > 0:
            s, energy = _relax(s, calc, search.relax_steps, search.fmax)
        extra: dict[str, Any] = {}
        if energy is not None and e_bulk is not None:
            extra["gb_energy_J_m2"] = round((energy - len(s) * e_bulk) / (2 * area) * EV_PER_A2_TO_J_PER_M2, 4)
            extra["energy_eV"] = energy
        if scale != [1, 1, 1]:
            s.make_supercell(scale)
        stoich = s.composition.reduced_composition == conv.composition.reduced_composition
        ratio, i, j, dmin = closest_violation(s, floors)
        closest = f"{s[i].specie.symbol}-{s[j].specie.symbol} {dmin:.3f} Å" if i >= 0 else None
        mm = s.lattice.matrix
        out.append(tag(
            Structure(s.lattice, s.species, s.frac_coords, site_properties={"grain": s.site_properties["grain"]}),
            "grain_boundary",
            f"{_MOD}.grain_boundary_translations",
            {"rotation_axis": list(axis), "rotation_angle": float(rotation_angle), "plane": plane,
             "gb_type": gb_type, "min_grain_thickness": min_grain_thickness, "overlap_fraction": overlap_fraction,
             "expand_times": expand, "in_plane_scaling": scale, "search": search.describe()},
            structure,
            sigma=int(gb.sigma),
            rotation_axis=list(axis),
            misorientation=float(rotation_angle),
            plane=None if plane is None else [int(x) for x in plane],
            gb_type="twist" if plane is None or _parallel(plane, axis, conv) else "tilt",
            n_boundaries=2,
            grain_thickness=float(perpendicular_widths(s)[2] / 2.0),
            translation={"in_plane_A": [round(float(t.shift[0] * np.linalg.norm(mm[0]) / scale[0]), 4),
                                        round(float(t.shift[1] * np.linalg.norm(mm[1]) / scale[1]), 4)],
                         "expansion_A": t.expansion, "rank": rank},
            min_distance_ratio=round(float(ratio), 4),
            closest_pair=closest,
            pair_floors_A={f"{a}-{b}": round(v, 3) for (a, b), v in floors.items()},
            removed_formula_units=removed_units,
            stoichiometric=bool(stoich),
            net_charge=net_charge(s, conv),
            coulomb_energy_eV=t.coulomb,
            search_counts={"translations": len(trials), "passed_overlap_rule": sum(x.ratio >= 1 for x in trials),
                           "unique_shift_group": len(group)},
            **extra,
        ))
    return out


def _csl_bicrystal(lat: Any, axis: tuple[int, ...], rotation_angle: float, plane: Sequence[int] | None,
                   min_grain_thickness: float, min_in_plane: float | None, max_atoms: int | None, entry: str
                   ) -> tuple[Any, int, list[int]]:
    """pymatgen's CSL bicrystal with grains of at least ``min_grain_thickness`` Å: (the GrainBoundary, its
    expand_times, the in-plane supercell scaling for ``min_in_plane``); refuses more than ``max_atoms``."""
    gen_axis = _to_generator_indices(lat, axis, "axis")
    gen_plane = None if plane is None else _to_generator_indices(lat, plane, "plane")

    def build(expand: int, gap: float):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return lat.generator.gb_from_parameters(
                    gen_axis, rotation_angle, expand_times=expand, vacuum_thickness=gap, plane=gen_plane,
                    ratio=lat.ratio, rm_ratio=0.0)
            except (ValueError, RuntimeError) as exc:
                raise StructureError(
                    f"{entry}: pymatgen cannot build a boundary with axis {list(axis)}, angle {rotation_angle:.3f}°, "
                    f"plane {plane}: {exc}; check that the angle is a CSL angle of this axis") from None

    # pymatgen opens the "vacuum" along a x b, which points against c in left-handed cells: open it along c
    gb = build(1, 0.0)
    mat = gb.lattice.matrix
    gap = _BUILD_GAP if np.dot(np.cross(mat[0], mat[1]), mat[2]) > 0 else -_BUILD_GAP
    grain = perpendicular_widths(gb)[2] / 2.0
    expand = max(1, math.ceil(min_grain_thickness / grain - 1e-9))
    gb = build(expand, gap)
    scale = [1, 1, 1]
    if min_in_plane:
        w = perpendicular_widths(gb)
        scale = [max(1, math.ceil(min_in_plane / w[i] - 1e-9)) for i in (0, 1)] + [1]
    n = len(gb) * scale[0] * scale[1]
    if max_atoms is not None and n > max_atoms:
        raise StructureError(
            f"{entry}: the Σ{gb.sigma} boundary with grains ≥ {min_grain_thickness} Å has {n} atoms > max_atoms "
            f"{max_atoms}; lower min_grain_thickness/min_in_plane, pick a smaller Σ or raise max_atoms")
    return gb, expand, scale


def _overlap_free(trials: list[_Trial], base: Structure, floors: dict, conv: Structure, bonds: Any
                  ) -> tuple[list[_Trial], int]:
    """The trials that keep every pair above its floor; if none does, the 3 best after removing overlapping
    formula units (with the number of units removed)."""
    passed = [t for t in trials if t.ratio >= 1.0]
    if passed:
        return passed, 0
    removed_units = 0
    best = sorted(trials, key=lambda t: -t.ratio)[:3]
    for t in best:
        s, removed_units = _remove_overlaps(t.structure(base), floors, conv, bonds)
        t._structure, t.cart, t.matrix = s, s.cart_coords, s.lattice.matrix
        t.ratio = closest_violation(s, floors)[0]
    return [t for t in best if t.ratio >= 1.0], removed_units


def _rank_translations(passed: list[_Trial], base: Structure, conv: Structure, search: TranslationSearch,
                       calc: Any) -> tuple[list[_Trial], float | None]:
    """Rank the overlap-free translations (point charges, then the calculator's energy if any) and keep the
    ``search.n_keep`` best that are not symmetry-equivalent; also the bulk energy per atom (eV) of the calculator."""
    oxi = _oxidation(conv)
    base_charges = None if oxi is None else np.array([oxi[x.specie.symbol] for x in base])
    passed.sort(key=lambda t: -t.ratio)
    if search.rank_by != "geometry" and oxi:
        for t in passed:
            charges = np.array([oxi[x.specie.symbol] for x in t.structure(base)]) if t._structure is not None \
                else base_charges
            t.coulomb = _coulomb(t.cart, t.matrix, charges)
        passed.sort(key=lambda t: t.coulomb)  # type: ignore[arg-type, return-value]
    e_bulk = None
    if calc is not None:
        passed = passed[: search.max_evaluations]
        for t in passed:
            t.energy = _energy(t.structure(base), calc)
        passed.sort(key=lambda t: t.energy)  # type: ignore[arg-type, return-value]
        e_bulk = _energy(conv, calc) / len(conv)
    kept: list[_Trial] = []
    for t in passed:
        value = t.energy if t.energy is not None else t.coulomb
        if value is not None and any(abs((k.energy if k.energy is not None else k.coulomb) - value)
                                     < 1e-4 * len(t.cart) for k in kept):
            continue  # a symmetry-equivalent translation
        kept.append(t)
        if len(kept) >= search.n_keep:
            break
    return kept, e_bulk


def _parallel(plane: Sequence[int], axis: Sequence[int], conv: Structure) -> bool:
    n = np.asarray(plane, float) @ conv.lattice.reciprocal_lattice.matrix
    a = np.asarray(axis, float) @ conv.lattice.matrix
    return abs(abs(np.dot(n, a)) / (np.linalg.norm(n) * np.linalg.norm(a)) - 1) < 1e-6


def build_grain_boundary(
    structure: Structure,
    rotation_axis: Sequence[int],
    rotation_angle: float | None = None,
    sigma: int | None = None,
    plane: Sequence[int] | None = None,
    gb_type: GBType = "tilt",
    min_grain_thickness: float = 10.0,
    overlap_fraction: float = 0.8,
    search: TranslationSearch | None = None,
    min_in_plane: float | None = None,
    max_atoms: int | None = None,
    entry: str = "",
) -> Structure:
    """The best translation of one boundary (see :func:`grain_boundary_translations` for the parameters)."""
    return grain_boundary_translations(structure, rotation_axis, rotation_angle, sigma, plane, gb_type,
                                       min_grain_thickness, overlap_fraction, search, min_in_plane, max_atoms,
                                       entry)[0]


def build_gb_candidates(
    structure: Structure,
    candidates: Sequence[GBCandidate],
    min_grain_thickness: float = 10.0,
    overlap_fraction: float = 0.8,
    search: TranslationSearch | None = None,
    min_in_plane: float | None = None,
    max_atoms: int | None = None,
    entry: str = "",
) -> list[Structure]:
    """The kept translations of each candidate of :func:`list_gb_candidates`."""
    out: list[Structure] = []
    for c in candidates:
        out += grain_boundary_translations(
            structure, c.rotation_axis, rotation_angle=c.rotation_angle, plane=c.plane,
            gb_type="twist" if c.gb_type == "twist" else "tilt", min_grain_thickness=min_grain_thickness,
            overlap_fraction=overlap_fraction, search=search, min_in_plane=min_in_plane, max_atoms=max_atoms,
            entry=entry)
    return out


__all__ = [
    "GBCandidate",
    "TranslationSearch",
    "build_gb_candidates",
    "build_grain_boundary",
    "grain_boundary_translations",
    "list_gb_candidates",
    "possible_sigmas",
]
