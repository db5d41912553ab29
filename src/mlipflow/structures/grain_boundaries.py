"""Grain boundaries: CSL Σ tilt and twist bicrystals with pymatgen's ``GrainBoundaryGenerator``.

Distance rule for overlapping atoms: after the two grains are joined, pymatgen removes one atom of every pair
closer than ``rm_ratio`` x the shortest bond length of the bulk (default ``rm_ratio = 0.7``).  This can change
the composition and leave a charged cell (Li2O Σ5(210) becomes Li72O40): such cells are flagged
(``stoichiometric: false`` and ``net_charge`` in the provenance), never silently kept as neutral.  The periodic
bicrystal holds two boundaries (at the middle and at the cell edge along c).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from pymatgen.core import Structure
from pymatgen.core.interface import GrainBoundaryGenerator
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from mlipflow.errors import StructureError
from mlipflow.structures.provenance import clean_copy, net_charge, perpendicular_widths, tag

_MOD = "mlipflow.structures.grain_boundaries"

GBType = Literal["tilt", "twist", "any"]
_TYPE_KEYS = {
    "tilt": ("Symmetric tilt",),
    "twist": ("Twist",),
    "any": ("Symmetric tilt", "Twist", "Normal tilt", "Mixed"),
}


@dataclass
class GBCandidate:
    """A CSL boundary before it is built: Σ, plane, misorientation (degrees) and estimated atom count."""

    sigma: int
    rotation_axis: tuple[int, int, int]
    rotation_angle: float  # degrees
    plane: tuple[int, int, int]
    gb_type: str
    n_atoms_estimate: int

    def as_dict(self) -> dict:
        return asdict(self)


def _conventional(structure: Structure) -> Structure:
    return SpacegroupAnalyzer(clean_copy(structure), symprec=0.1).get_conventional_standard_structure()


def _metrically_cubic(structure: Structure, tol: float = 1e-3) -> bool:
    a, b, c = structure.lattice.abc
    return max(abs(b / a - 1), abs(c / a - 1)) < tol and all(abs(x - 90) < 0.1 for x in structure.lattice.angles)


def _require_cubic(structure: Structure, entry: str) -> Structure:
    """Conventional cell of a cubic crystal, or of an ordered cell with a cubic metric (e.g. Li-ordered LLZO).

    For a cubic metric with lower atomic symmetry the CSL (a property of the lattice) is the cubic one, but
    angles that are equivalent in the cubic point group may give different boundaries.
    """
    conv = _conventional(structure)
    if SpacegroupAnalyzer(conv, symprec=0.1).get_crystal_system() != "cubic" and not _metrically_cubic(conv):
        raise StructureError(
            f"{entry}: Σ enumeration is implemented for cubic lattices; {structure.composition.reduced_formula} is "
            "not cubic: give rotation_angle and plane explicitly to build_grain_boundary"
        )
    return conv


def possible_sigmas(
    structure: Structure, rotation_axis: Sequence[int], max_sigma: int, entry: str = ""
) -> dict[int, list[float]]:
    """Σ values (≤ ``max_sigma``) and their rotation angles (degrees) for a cubic lattice and axis."""
    _require_cubic(structure, entry)
    axis = tuple(int(i) for i in rotation_axis)
    if len(axis) != 3 or not any(axis):
        raise StructureError(f"{entry}: rotation_axis {rotation_axis} must be three integers, not all zero")
    found = GrainBoundaryGenerator.enum_sigma_cubic(max_sigma, axis)
    return {int(k): [float(a) for a in v] for k, v in found.items() if k > 1}


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
        A cubic crystal.
    rotation_axis
        Rotation axis [uvw] in the conventional cell.
    max_sigma
        Largest Σ enumerated.
    sigmas
        Keep only these Σ; a Σ that the axis does not allow raises ``StructureError`` listing those it does.
    gb_type
        ``tilt`` (symmetric tilt), ``twist`` or ``any``.
    plane_cutoff
        Largest Miller index of the boundary planes considered.
    expand_times
        Repetitions of the CSL cell along the normal per grain (used for the atom-count estimate).
    entry
        Name used in error messages.

    Returns
    -------
    list of GBCandidate
        Sorted by Σ then plane; ``n_atoms_estimate = 2 * expand_times * Σ * N_conventional`` (before overlap
        removal).
    """
    conv = _require_cubic(structure, entry)
    available = possible_sigmas(conv, rotation_axis, max(max_sigma, *(sigmas or [0])), entry)
    wanted = sorted(available) if sigmas is None else list(sigmas)
    for s in wanted:
        if s not in available:
            raise StructureError(
                f"{entry}: Σ{s} is impossible for rotation axis {list(rotation_axis)} of a cubic lattice; "
                f"possible Σ ≤ {max(max_sigma, s)}: {', '.join(map(str, sorted(available))) or 'none'}"
            )
    out = []
    axis = tuple(int(i) for i in rotation_axis)
    for s in wanted:
        if s > max_sigma and sigmas is None:
            continue
        angle = min(available[s])  # the other angles of a Σ are symmetry-equivalent for a cubic lattice
        planes = GrainBoundaryGenerator.enum_possible_plane_cubic(plane_cutoff, axis, angle)
        seen: set[tuple] = set()
        for key in _TYPE_KEYS[gb_type]:
            for pair in planes.get(key, []):
                plane = tuple(int(i) for i in pair[0])
                family = (key, tuple(sorted(abs(i) for i in plane)))
                if family in seen:
                    continue
                seen.add(family)
                out.append(
                    GBCandidate(
                        sigma=s,
                        rotation_axis=axis,
                        rotation_angle=round(angle, 4),
                        plane=plane,
                        gb_type=key.lower().replace(" ", "_"),
                        n_atoms_estimate=2 * expand_times * s * len(conv),
                    )
                )
    return out


def build_grain_boundary(
    structure: Structure,
    rotation_axis: Sequence[int],
    rotation_angle: float | None = None,
    sigma: int | None = None,
    plane: Sequence[int] | None = None,
    min_grain_thickness: float = 10.0,
    rm_ratio: float = 0.7,
    vacuum_thickness: float = 0.0,
    min_in_plane: float | None = None,
    max_atoms: int | None = None,
    entry: str = "",
) -> Structure:
    """Build one periodic bicrystal (two boundaries per cell).

    Parameters
    ----------
    structure
        The crystal (its conventional standard cell is used).
    rotation_axis
        Rotation axis [uvw].
    rotation_angle
        Misorientation (degrees); or give ``sigma`` (cubic lattices) and the first angle of that Σ is used.
    sigma
        CSL Σ (used when ``rotation_angle`` is None).
    plane
        Boundary plane (hkl); default the symmetric tilt plane chosen by pymatgen.
    min_grain_thickness
        Minimum thickness (Å) of each grain along the normal; the CSL cell is repeated until reached.
    rm_ratio
        Overlap rule: one atom of each pair closer than ``rm_ratio`` x the bulk's shortest bond is removed.
    vacuum_thickness
        Vacuum (Å) between the grains (0: a periodic bicrystal).
    min_in_plane
        If given, repeat the cell in the boundary plane until both in-plane widths are at least this (Å), e.g.
        twice the model cutoff when the tilt axis is a single lattice constant.
    max_atoms
        Refuse larger cells with a ``StructureError`` naming ``entry``.
    entry
        Name used in error messages.

    Returns
    -------
    Structure
        Family ``grain_boundary``; provenance holds ``sigma``, ``rotation_axis``, ``misorientation`` (degrees),
        ``plane``, ``stoichiometric``, ``net_charge`` and ``grain_thickness`` (Å).
    """
    conv = _conventional(structure)
    axis = tuple(int(i) for i in rotation_axis)
    if rotation_angle is None:
        if sigma is None:
            raise StructureError(f"{entry}: give rotation_angle or sigma for the grain boundary")
        avail = possible_sigmas(conv, axis, max(sigma, 3), entry)
        if sigma not in avail:
            raise StructureError(
                f"{entry}: Σ{sigma} is impossible for rotation axis {list(axis)} of a cubic lattice; possible Σ ≤ "
                f"{sigma}: {', '.join(map(str, sorted(avail))) or 'none'}"
            )
        rotation_angle = min(avail[sigma])
    gen = GrainBoundaryGenerator(conv)
    kw: dict = {"plane": tuple(int(i) for i in plane) if plane is not None else None, "rm_ratio": rm_ratio}
    system = SpacegroupAnalyzer(conv, symprec=0.1).get_crystal_system()
    if system != "cubic" and _metrically_cubic(conv) and system in ("tetragonal", "orthorhombic"):
        kw["ratio"] = [1, 1] if system == "tetragonal" else [1, 1, 1]

    def _build(expand: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return gen.gb_from_parameters(
                    axis, rotation_angle, expand_times=expand, vacuum_thickness=vacuum_thickness, **kw
                )
            except (ValueError, RuntimeError) as exc:
                raise StructureError(
                    f"{entry}: pymatgen cannot build a boundary with axis {list(axis)}, angle {rotation_angle:.3f}°, "
                    f"plane {plane}: {exc}; check that the angle is a CSL angle of this axis"
                ) from None

    gb = _build(1)
    grain = perpendicular_widths(gb)[2] / 2.0
    expand = max(1, math.ceil(min_grain_thickness / grain - 1e-9))
    if expand > 1:
        gb = _build(expand)
    s = Structure(gb.lattice, gb.species, gb.frac_coords)
    scale = [1, 1, 1]
    if min_in_plane:
        w = perpendicular_widths(s)
        scale = [max(1, math.ceil(min_in_plane / w[i] - 1e-9)) for i in (0, 1)] + [1]
    n = len(s) * scale[0] * scale[1]
    if max_atoms is not None and n > max_atoms:
        raise StructureError(
            f"{entry}: the Σ{gb.sigma} boundary with grains ≥ {min_grain_thickness} Å has {n} atoms > max_atoms "
            f"{max_atoms}; lower min_grain_thickness/min_in_plane, pick a smaller Σ or raise max_atoms"
        )
    if scale != [1, 1, 1]:
        s.make_supercell(scale)
    stoich = s.composition.reduced_composition == conv.composition.reduced_composition
    return tag(
        s,
        "grain_boundary",
        f"{_MOD}.build_grain_boundary",
        {
            "rotation_axis": list(axis),
            "rotation_angle": float(rotation_angle),
            "plane": list(gb.gb_plane),
            "min_grain_thickness": min_grain_thickness,
            "rm_ratio": rm_ratio,
            "vacuum_thickness": vacuum_thickness,
            "expand_times": expand,
            "in_plane_scaling": scale,
        },
        structure,
        sigma=int(gb.sigma),
        rotation_axis=list(axis),
        misorientation=float(gb.rotation_angle),
        plane=[int(i) for i in gb.gb_plane],
        n_boundaries=1 if vacuum_thickness > 0 else 2,
        grain_thickness=float(perpendicular_widths(s)[2] / 2.0),
        stoichiometric=bool(stoich),
        net_charge=net_charge(s, conv),
    )


def build_gb_candidates(
    structure: Structure,
    candidates: Sequence[GBCandidate],
    min_grain_thickness: float = 10.0,
    rm_ratio: float = 0.7,
    min_in_plane: float | None = None,
    max_atoms: int | None = None,
    entry: str = "",
) -> list[Structure]:
    """Build each candidate of :func:`list_gb_candidates` (see :func:`build_grain_boundary`)."""
    return [
        build_grain_boundary(
            structure,
            c.rotation_axis,
            rotation_angle=c.rotation_angle,
            plane=c.plane,
            min_grain_thickness=min_grain_thickness,
            rm_ratio=rm_ratio,
            min_in_plane=min_in_plane,
            max_atoms=max_atoms,
            entry=entry,
        )
        for c in candidates
    ]


__all__ = ["GBCandidate", "build_gb_candidates", "build_grain_boundary", "list_gb_candidates", "possible_sigmas"]
