"""Lattice-matched hetero-interfaces with pymatgen's ``CoherentInterfaceBuilder`` (ZSL).

``CoherentInterfaceBuilder.get_interfaces`` is a generator over every ZSL match: the matches are sorted by
area (smallest first) and only the first ``max_candidates`` per termination are built.  A Miller pair with no
match within the strain/area limits raises a ``StructureError`` that names the entry and the limits to relax.

What every cell keeps (checked, and stated in its provenance):

* **Molecular anions** (CO3, PS4, PO4, ...: non-metal pairs bonded in the bulk, see
  :func:`~mlipflow.structures.bonds.molecular_bonds`) are never cut: only terminations whose planes break no such
  bond are used (pymatgen's ``SlabGenerator.get_slabs(bonds=..., max_broken_bonds=0)``), and the strain of the
  lattice match is not applied inside them (each unit keeps its bulk bond lengths).  A cell whose units differ
  from the bulk's (a C with two O, a free O) is never returned.
* **Charge**: each slab is a whole number of oriented bulk cells, so it is stoichiometric; the net ionic charge
  of film and substrate (formal oxidation states of each bulk) is recorded and a charged cell is skipped.
* **Both interfaces**: the periodic cell has the film on the substrate at ``gap`` and, by default, the
  substrate on the film across the cell boundary at the same distance (``vacuum_over_film`` = ``gap``).
* **Registry**: the film is shifted in the interface plane over a grid (``registry_step`` Å); shifts that bring
  any pair closer than ``overlap_fraction`` x its reference distance are refused and the lowest point-charge
  energy is kept.  Reference distances are the bulk ones; for pairs found in neither bulk (e.g. F-O), the mean
  of the two like-pair distances.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pymatgen.analysis.interfaces import zsl as _zsl
from pymatgen.analysis.interfaces.coherent_interfaces import CoherentInterfaceBuilder
from pymatgen.analysis.interfaces.zsl import ZSLGenerator
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from mlipflow.errors import StructureError
from mlipflow.structures.bonds import (
    min_floor_ratio,
    molecular_bonds,
    molecular_units,
    pair_key,
    pair_matrix,
    point_charge_energy,
    reunite_units,
    shortest_pair_distances,
    unit_formulas,
)
from mlipflow.structures.provenance import clean_copy, net_charge, tag

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
    overlap_fraction: float = 0.75,
    registry_step: float | None = 1.0,
    jit: bool | None = None,
    entry: str = "",
) -> list[Structure]:
    """Coherent film|substrate interfaces for every termination, ranked by match area (module docstring).

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
        Indices into the list of unit-preserving terminations (default: all).
    overlap_fraction
        Pair rule: every pair at least this fraction of its reference distance (module docstring).
    registry_step
        Grid spacing (Å) of the in-plane registry scan of the film; ``None``: no scan (pymatgen's registry).
    jit
        Use numba for the ZSL search (default :data:`ZSL_JIT`).
    entry
        Name used in error messages.

    Returns
    -------
    list of Structure
        Family ``interface``, sorted by (match area, von Mises strain); provenance holds ``match_area``,
        ``von_mises_strain``, ``max_strain``, ``termination``, ``gap``, ``molecular_units`` (formula -> count),
        ``net_charge`` of film and substrate and ``registry_shift_A``.
    """
    with _zsl_python(not (ZSL_JIT if jit is None else jit)):
        return _build(film, substrate, film_miller, substrate_miller, max_area, max_strain, max_angle_tol,
                      max_area_ratio_tol, film_thickness, substrate_thickness, gaps, vacuum_over_film,
                      max_candidates, max_atoms, terminations, overlap_fraction, registry_step, entry)


@dataclass
class _Side:
    """What the checks need to know of film or substrate: bulk, molecular bonds, units, charges."""

    bulk: Structure
    bonds: dict
    units: Counter
    oxi: dict[str, float] | None


def _side(structure: Structure) -> _Side:
    bonds = molecular_bonds(structure)
    units = unit_formulas(structure, molecular_units(structure, bonds))
    try:
        guesses = structure.composition.oxi_state_guesses(max_sites=-50)
    except ValueError:
        guesses = []
    oxi = {str(k): float(v) for k, v in guesses[0].items()} if guesses and not all(
        el.is_metal for el in structure.composition.elements) else ({} if all(
            el.is_metal for el in structure.composition.elements) else None)
    return _Side(structure, bonds, units, oxi)


def _repair_slab(slab, bonds: dict) -> None:
    """Reunite molecular units that a slab's termination plane cut (in place): the slab is a whole number of
    oriented cells, so the ligands cut off at one surface sit one slab repeat away at the other; see
    :func:`~mlipflow.structures.bonds.reunite_units` (the unit ends on the side of its centre atom)."""
    ouc = slab.oriented_unit_cell
    repeat = round(len(slab) / len(ouc)) * ouc.lattice.matrix[2]
    reunite_units(slab, bonds, repeat, set(unit_formulas(ouc, molecular_units(ouc, bonds))))


@contextlib.contextmanager
def _unit_keeping_slabs() -> Iterator[None]:
    """Make pymatgen's interface builder cut slabs that keep molecular units whole (see :func:`_repair_slab`)."""
    from pymatgen.analysis.interfaces import coherent_interfaces as ci
    from pymatgen.core.surface import SlabGenerator

    class UnitKeepingSlabGenerator(SlabGenerator):
        def get_slab(self, *args: Any, **kwargs: Any):
            slab = super().get_slab(*args, **kwargs)
            bonds = molecular_bonds(self.oriented_unit_cell)
            if bonds:
                _repair_slab(slab, bonds)
            return slab

    saved = ci.SlabGenerator
    ci.SlabGenerator = UnitKeepingSlabGenerator
    try:
        yield
    finally:
        ci.SlabGenerator = saved


def _restore_units(s: Structure, bonds: dict) -> None:
    """Give every molecular unit its bulk bond lengths back (the lattice-match strain stays outside them)."""
    if not bonds:
        return
    for unit in molecular_units(s, bonds):
        if len(unit) < 2:
            continue
        counts = Counter(s[i].specie.symbol for i in unit)
        centre_el = min(counts, key=lambda el: (counts[el], el))
        centres = [i for i in unit if s[i].specie.symbol == centre_el]
        if len(centres) != 1:
            continue  # chains and rings (P2S6, S8) keep the strained geometry
        c = centres[0]
        for i in unit:
            length = bonds.get(pair_key(centre_el, s[i].specie.symbol))
            if i == c or length is None:
                continue
            d, image = s[c].distance_and_image(s[i])
            v = s.lattice.get_cartesian_coords(s[i].frac_coords + image - s[c].frac_coords)
            s.replace(i, s[i].species, coords=s[c].coords + v * (length / d), coords_are_cartesian=True,
                      properties=s[i].properties)


def _reference_floors(film: _Side, sub: _Side, fraction: float) -> dict:
    """Pair floors (Å) across an interface: ``fraction`` x a reference distance per pair.

    The reference is the shortest distance of the pair in either bulk, else the mean of the two like-pair
    distances (anion-anion contacts such as F-O); for pairs with a metal it is at most the sum of the covalent
    radii (a Li atom of the metal may approach P of the electrolyte closer than any Li-P pair of Li3PS4).
    """
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
    from pymatgen.core import Element

    ref: dict = {}
    for side in (film, sub):
        for k, d in shortest_pair_distances(side.bulk, 8.0).items():
            ref[k] = min(ref.get(k, np.inf), d)
    elements = sorted({el.symbol for side in (film, sub) for el in side.bulk.composition.elements})
    floors = {}
    for a in elements:
        for b in elements:
            k = pair_key(a, b)
            if k in floors:
                continue
            if k in ref:
                d = ref[k]
            else:
                like = [ref[(x, x)] for x in (a, b) if (x, x) in ref]
                d = float(np.mean(like)) if like else min(ref.values())
            if Element(a).is_metal or Element(b).is_metal:
                d = min(d, CovalentRadius.radius.get(a, 1.5) + CovalentRadius.radius.get(b, 1.5))
            floors[k] = fraction * d
    return floors


def _registry_scan(s: Structure, floors: dict, charges: np.ndarray | None, step: float, max_energies: int = 16,
                   max_points: int = 100) -> tuple[Structure, list, float]:
    """Shift the film in plane over a grid (``step`` Å, coarser if that gives more than ``max_points`` shifts);
    among the ``max_energies`` overlap-free shifts with the largest smallest distance ratio keep the lowest
    point-charge energy."""
    labels = s.site_properties.get("interface_label", [])
    film = np.array([lab == "film" for lab in labels])
    m = s.lattice.matrix
    fm = pair_matrix([x.specie.symbol for x in s], floors)
    step = max(step, float(np.sqrt(np.linalg.norm(np.cross(m[0], m[1])) / max_points)))
    n1 = max(1, int(np.ceil(np.linalg.norm(m[0]) / step)))
    n2 = max(1, int(np.ceil(np.linalg.norm(m[1]) / step)))
    trials = []
    for i in range(n1):
        for j in range(n2):
            shift = (i / n1) * m[0] + (j / n2) * m[1]
            cart = s.cart_coords.copy()
            cart[film] += shift
            ratio = min_floor_ratio(cart, m, fm)
            if ratio >= 1.0:
                trials.append((ratio, shift, cart))
    trials.sort(key=lambda x: -x[0])
    best = None
    for ratio, shift, cart in trials[:max_energies]:  # point charges on the most open shifts only
        energy = point_charge_energy(cart, m, charges) if charges is not None else -ratio
        if best is None or energy < best[0]:
            best = (energy, shift, ratio)
    if best is None:
        return s, [0.0, 0.0], min_floor_ratio(s.cart_coords, m, fm)
    energy, shift, ratio = best
    cart = s.cart_coords.copy()
    cart[film] += shift
    out = Structure(s.lattice, s.species, cart, coords_are_cartesian=True, site_properties=s.site_properties)
    return out, [round(float(np.dot(shift, m[k]) / np.linalg.norm(m[k])), 4) for k in (0, 1)], ratio


def _build(film, substrate, film_miller, substrate_miller, max_area, max_strain, max_angle_tol, max_area_ratio_tol,
           film_thickness, substrate_thickness, gaps, vacuum_over_film, max_candidates, max_atoms, terminations,
           overlap_fraction, registry_step, entry) -> list[Structure]:
    fm = tuple(int(i) for i in film_miller)
    sm = tuple(int(i) for i in substrate_miller)
    f_std, s_std = _standard(film), _standard(substrate)
    fname, sname = film.composition.reduced_formula, substrate.composition.reduced_formula
    fside, sside = _side(f_std), _side(s_std)
    zsl = ZSLGenerator(
        max_area_ratio_tol=max_area_ratio_tol, max_area=max_area, max_length_tol=max_strain, max_angle_tol=max_angle_tol
    )
    with warnings.catch_warnings(), _unit_keeping_slabs():
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
    floors = _reference_floors(fside, sside, overlap_fraction)
    expected_units = set(fside.units) | set(sside.units)
    out: list[Structure] = []
    skipped: Counter = Counter()
    for ti in chosen:
        if ti >= len(terms):
            raise StructureError(f"{entry}: termination index {ti} out of range; there are {len(terms)}")
        term = terms[ti]
        for gap in gaps:
            built = 0
            with warnings.catch_warnings(), _unit_keeping_slabs():
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
                        skipped["more than max_atoms"] += 1
                        continue
                    cell, why = _finish(iface, fside, sside, floors, expected_units, registry_step)
                    if cell is None:
                        skipped[why] += 1
                        continue
                    out.append(_tagged(cell, match, iface, film, substrate, fm, sm, term, gap, locals_=dict(
                        max_area=max_area, max_strain=max_strain, film_thickness=film_thickness,
                        substrate_thickness=substrate_thickness, vacuum_over_film=vacuum_over_film,
                        overlap_fraction=overlap_fraction, registry_step=registry_step)))
                    built += 1
                    if built >= max_candidates:
                        break
    if not out:
        why = ", ".join(f"{n} {k}" for k, n in skipped.items()) or "no cell"
        raise StructureError(
            f"{entry}: no {fname}{list(fm)} | {sname}{list(sm)} cell fits ({why}); lower the film/substrate "
            "thickness or max_area, raise max_atoms, widen the gap or try other Miller indices")
    out.sort(key=lambda s: (s.properties["provenance"]["match_area"], s.properties["provenance"]["von_mises_strain"]))
    return out


def _finish(iface, fside: _Side, sside: _Side, floors: dict, expected_units: set, registry_step: float | None
            ) -> tuple[Structure | None, str]:
    """Restore molecular units, check units and charge, scan the registry; (cell, "") or (None, reason)."""
    labels = [str(x) for x in iface.site_properties.get("interface_label", [])]
    s = Structure(iface.lattice, [sp.symbol for sp in iface.species], iface.frac_coords,
                  site_properties={"interface_label": ["film" if "film" in lab else "substrate" for lab in labels]})
    bonds = {**sside.bonds, **fside.bonds}
    _restore_units(s, bonds)
    units = unit_formulas(s, molecular_units(s, bonds))
    if set(units) - expected_units:
        return None, "with broken molecular units"
    charges = None
    if fside.oxi is not None and sside.oxi is not None:
        q_film = sum(fside.oxi.get(s[i].specie.symbol, 0.0) for i in range(len(s))
                     if s.site_properties["interface_label"][i] == "film")
        q_sub = sum(sside.oxi.get(s[i].specie.symbol, 0.0) for i in range(len(s))
                    if s.site_properties["interface_label"][i] == "substrate")
        if abs(q_film) > 1e-6 or abs(q_sub) > 1e-6:
            return None, "charged"
        if fside.oxi and sside.oxi:
            charges = np.array([(fside.oxi if lab == "film" else sside.oxi)[x.specie.symbol]
                                for x, lab in zip(s, s.site_properties["interface_label"], strict=True)])
    shift = [0.0, 0.0]
    if registry_step:
        s, shift, ratio = _registry_scan(s, floors, charges, registry_step)
    else:
        ratio = min_floor_ratio(s.cart_coords, s.lattice.matrix, pair_matrix([x.specie.symbol for x in s], floors))
    if ratio < 1.0:
        return None, "with atoms closer than overlap_fraction x their reference distance"
    s.properties = {"_checks": {"molecular_units": {k: v for k, v in units.items() if len(k) > 2},
                                "registry_shift_A": shift, "min_distance_ratio": round(float(ratio), 4)}}
    return s, ""


def _closest(structure: Structure) -> float:
    dm = structure.distance_matrix + np.eye(len(structure)) * 1e9
    return float(dm.min())


def _no_match(entry, fname, sname, fm, sm, max_area, max_strain, exc) -> str:
    why = f" ({exc})" if exc else ""
    return (
        f"{entry}: no lattice match for {fname}{list(fm)} | {sname}{list(sm)} within max_strain={max_strain:.3f} and "
        f"max_area={max_area:.0f} Å^2{why}; raise max_strain or max_area, or try other Miller indices"
    )


def _tagged(cell, match, iface, film, substrate, fm, sm, term, gap, locals_) -> Structure:
    props = iface.interface_properties
    strain = np.asarray(props.get("strain", np.zeros((3, 3))), dtype=float)
    eig = np.linalg.eigvalsh((strain + strain.T) / 2.0) if strain.shape == (3, 3) else np.zeros(3)
    checks = cell.properties.pop("_checks", {})
    labels = cell.site_properties["interface_label"]
    charge = {side: net_charge(Structure(cell.lattice, [x.specie for x, lab in zip(cell, labels, strict=True)
                                                        if lab == side],
                                         [x.frac_coords for x, lab in zip(cell, labels, strict=True) if lab == side]),
                               bulk)
              for side, bulk in (("film", film), ("substrate", substrate))}
    return tag(
        cell,
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
        n_interfaces=2,
        net_charge=charge,
        charge_neutral=all(q == 0.0 for q in charge.values() if q is not None),
        min_interatomic_distance=_closest(cell),
        **checks,
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
