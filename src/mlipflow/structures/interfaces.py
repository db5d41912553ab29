"""Lattice-matched hetero-interfaces with pymatgen's ``CoherentInterfaceBuilder`` (ZSL).

``CoherentInterfaceBuilder.get_interfaces`` is a generator over every ZSL match: the matches are sorted by
area (smallest first) and only the first ``max_candidates`` per termination are built.  A Miller pair with no
match within the strain/area limits raises a ``StructureError`` that names the entry and the limits to relax.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from pymatgen.analysis.interfaces import zsl as _zsl
from pymatgen.analysis.interfaces.coherent_interfaces import CoherentInterfaceBuilder
from pymatgen.analysis.interfaces.zsl import ZSLGenerator
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from mlipflow.errors import StructureError
from mlipflow.structures.provenance import clean_copy, tag

_MOD = "mlipflow.structures.interfaces"

#: Compile pymatgen's ZSL helpers with numba (pays ~12 s of compilation per process, worth it only for large
#: searches); default off: the plain-Python versions of the same functions are used.  Env: MLIPFLOW_ZSL_JIT=1.
ZSL_JIT = os.environ.get("MLIPFLOW_ZSL_JIT", "0") == "1"


@contextlib.contextmanager
def _zsl_python(enabled: bool) -> Iterator[None]:
    """Temporarily replace pymatgen's numba-compiled ZSL helpers by their own ``py_func`` (same code)."""
    if not enabled:
        yield
        return
    saved = {n: f for n, f in vars(_zsl).items() if hasattr(f, "py_func")}
    try:
        for n, f in saved.items():
            setattr(_zsl, n, f.py_func)
        yield
    finally:
        for n, f in saved.items():
            setattr(_zsl, n, f)


@dataclass
class InterfaceCandidate:
    """One row of the ranked interface table."""

    film: str
    substrate: str
    film_miller: tuple[int, int, int]
    substrate_miller: tuple[int, int, int]
    termination: str
    match_area: float  # Å^2
    von_mises_strain: float  # dimensionless
    max_strain: float  # largest absolute principal in-plane strain of the film
    n_atoms: int
    gap: float  # Å

    def as_dict(self) -> dict:
        return asdict(self)


def _standard(structure: Structure) -> Structure:
    return SpacegroupAnalyzer(clean_copy(structure), symprec=0.1).get_conventional_standard_structure()


def build_interfaces(
    film: Structure,
    substrate: Structure,
    film_miller: Sequence[int],
    substrate_miller: Sequence[int],
    max_area: float = 150.0,
    max_strain: float = 0.03,
    max_angle_tol: float = 0.01,
    max_area_ratio_tol: float = 0.09,
    film_thickness: float = 8.0,
    substrate_thickness: float = 8.0,
    gaps: Sequence[float] = (2.0,),
    vacuum_over_film: float | None = None,
    max_candidates: int = 1,
    max_atoms: int | None = 800,
    terminations: Sequence[int] | None = None,
    min_distance: float = 1.2,
    jit: bool | None = None,
    entry: str = "",
) -> list[Structure]:
    """Coherent film|substrate interfaces for every termination, ranked by match area.

    Parameters
    ----------
    film, substrate
        Bulk crystals (their conventional standard cells are used).
    film_miller, substrate_miller
        Miller indices of the two surfaces.
    max_area
        Largest ZSL supercell area (Å^2).
    max_strain
        ZSL ``max_length_tol``: largest relative change of a superlattice vector length (0.03 = 3 %).
    max_angle_tol
        ZSL angle tolerance (relative).
    max_area_ratio_tol
        ZSL area-ratio tolerance.
    film_thickness, substrate_thickness
        Slab thicknesses (Å).
    gaps
        Interlayer distances (Å) scanned; one cell per gap.
    vacuum_over_film
        Space (Å) above the film; default: the gap itself, i.e. a periodic cell with two equal interfaces.
    max_candidates
        ZSL matches built per termination (smallest area first).
    max_atoms
        Matches whose cell exceeds this are skipped; if all are skipped a ``StructureError`` is raised.
    terminations
        Indices into the builder's termination list (default: all).
    min_distance
        Cells with two atoms closer than this (Å), e.g. across a too small gap, are skipped.
    jit
        Use numba for the ZSL search (default :data:`ZSL_JIT`).
    entry
        Name used in error messages.

    Returns
    -------
    list of Structure
        Family ``interface``, sorted by (match area, von Mises strain); provenance holds ``match_area``,
        ``von_mises_strain``, ``max_strain``, ``termination`` and ``gap``.
    """
    with _zsl_python(not (ZSL_JIT if jit is None else jit)):
        return _build(
            film,
            substrate,
            film_miller,
            substrate_miller,
            max_area,
            max_strain,
            max_angle_tol,
            max_area_ratio_tol,
            film_thickness,
            substrate_thickness,
            gaps,
            vacuum_over_film,
            max_candidates,
            max_atoms,
            terminations,
            min_distance,
            entry,
        )


def _build(
    film,
    substrate,
    film_miller,
    substrate_miller,
    max_area,
    max_strain,
    max_angle_tol,
    max_area_ratio_tol,
    film_thickness,
    substrate_thickness,
    gaps,
    vacuum_over_film,
    max_candidates,
    max_atoms,
    terminations,
    min_distance,
    entry,
) -> list[Structure]:
    fm = tuple(int(i) for i in film_miller)
    sm = tuple(int(i) for i in substrate_miller)
    f_std, s_std = _standard(film), _standard(substrate)
    fname, sname = film.composition.reduced_formula, substrate.composition.reduced_formula
    zsl = ZSLGenerator(
        max_area_ratio_tol=max_area_ratio_tol, max_area=max_area, max_length_tol=max_strain, max_angle_tol=max_angle_tol
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cib = CoherentInterfaceBuilder(s_std, f_std, film_miller=fm, substrate_miller=sm, zslgen=zsl)
        except ValueError as exc:
            raise StructureError(_no_match(entry, fname, sname, fm, sm, max_area, max_strain, exc)) from None
    if not cib.zsl_matches:
        raise StructureError(_no_match(entry, fname, sname, fm, sm, max_area, max_strain, None))
    cib.zsl_matches = sorted(cib.zsl_matches, key=lambda m: m.match_area)
    terms = list(cib.terminations)
    chosen = range(len(terms)) if terminations is None else terminations
    out: list[Structure] = []
    too_big = too_close = 0
    for ti in chosen:
        if ti >= len(terms):
            raise StructureError(f"{entry}: termination index {ti} out of range; there are {len(terms)}")
        term = terms[ti]
        for gap in gaps:
            built = 0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gen = cib.get_interfaces(
                    term,
                    gap=gap,
                    vacuum_over_film=gap if vacuum_over_film is None else vacuum_over_film,
                    film_thickness=film_thickness,
                    substrate_thickness=substrate_thickness,
                    in_layers=False,
                )
                for iface, match in zip(gen, cib.zsl_matches, strict=False):
                    if max_atoms is not None and len(iface) > max_atoms:
                        too_big += 1
                        continue
                    closest = _closest(iface)
                    if closest < min_distance:
                        too_close += 1
                        continue
                    out.append(
                        _tagged(
                            iface,
                            match,
                            film,
                            substrate,
                            fm,
                            sm,
                            term,
                            gap,
                            locals_=dict(
                                max_area=max_area,
                                max_strain=max_strain,
                                film_thickness=film_thickness,
                                substrate_thickness=substrate_thickness,
                                vacuum_over_film=vacuum_over_film,
                            ),
                        )
                    )
                    built += 1
                    if built >= max_candidates:
                        break
    if not out:
        raise StructureError(
            f"{entry}: no {fname}{list(fm)} | {sname}{list(sm)} cell fits: {too_big} had more than "
            f"max_atoms={max_atoms} atoms, {too_close} had atoms closer than {min_distance} Å; lower the "
            "film/substrate thickness or max_area, raise max_atoms, or widen the gap"
        )
    out.sort(key=lambda s: (s.properties["provenance"]["match_area"], s.properties["provenance"]["von_mises_strain"]))
    return out


def _closest(structure: Structure) -> float:
    dm = structure.distance_matrix + np.eye(len(structure)) * 1e9
    return float(dm.min())


def _no_match(entry, fname, sname, fm, sm, max_area, max_strain, exc) -> str:
    why = f" ({exc})" if exc else ""
    return (
        f"{entry}: no lattice match for {fname}{list(fm)} | {sname}{list(sm)} within max_strain={max_strain:.3f} and "
        f"max_area={max_area:.0f} Å^2{why}; raise max_strain or max_area, or try other Miller indices"
    )


def _tagged(iface, match, film, substrate, fm, sm, term, gap, locals_) -> Structure:
    props = iface.interface_properties
    strain = np.asarray(props.get("strain", np.zeros((3, 3))), dtype=float)
    eig = np.linalg.eigvalsh((strain + strain.T) / 2.0) if strain.shape == (3, 3) else np.zeros(3)
    labels = [str(x) for x in iface.site_properties.get("interface_label", [])]
    s = Structure(iface.lattice, [sp.symbol for sp in iface.species], iface.frac_coords)
    if labels:
        s.add_site_property("interface_label", labels)
    return tag(
        s,
        "interface",
        f"{_MOD}.build_interfaces",
        {"film_miller": list(fm), "substrate_miller": list(sm), "gap": gap, **locals_},
        f"{film.composition.reduced_formula} | {substrate.composition.reduced_formula}",
        film=film.composition.reduced_formula,
        substrate=substrate.composition.reduced_formula,
        termination=" / ".join(term),
        match_area=float(match.match_area),
        von_mises_strain=float(props.get("von_mises_strain", 0.0)),
        max_strain=float(np.abs(eig).max()),
        gap=float(gap),
        min_interatomic_distance=_closest(s),
    )


def interface_candidates(interfaces: Sequence[Structure]) -> list[InterfaceCandidate]:
    """The ranked table (:class:`InterfaceCandidate` rows) of interfaces made by :func:`build_interfaces`."""
    rows = []
    for s in interfaces:
        p = s.properties["provenance"]
        rows.append(
            InterfaceCandidate(
                film=p["film"],
                substrate=p["substrate"],
                film_miller=tuple(p["parameters"]["film_miller"]),
                substrate_miller=tuple(p["parameters"]["substrate_miller"]),
                termination=p["termination"],
                match_area=round(p["match_area"], 3),
                von_mises_strain=round(p["von_mises_strain"], 5),
                max_strain=round(p["max_strain"], 5),
                n_atoms=len(s),
                gap=p["gap"],
            )
        )
    return rows
