"""Point defects and off-stoichiometry: vacancies, antisites, substitutional doping, interdiffusion.

Charge rule (stated once, used everywhere): oxidation states are guessed from the stoichiometric parent
(``Composition.oxi_state_guesses``).  A generator either restores neutrality with a stated compensation
(``compensation`` below) or leaves the cell charged and records the net ionic charge in the provenance
(``net_charge``, in e, ``charge_neutral: false``), so that the dataset can filter or the labeler can set a
background charge.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pymatgen.core import Structure

from mlipflow.errors import StructureError
from mlipflow.structures.provenance import check_element, clean_copy, net_charge, tag

_MOD = "mlipflow.structures.defects"

Compensation = Literal["none", "anion", "electronic"]


def _indices(structure: Structure, element: str) -> np.ndarray:
    return np.array([i for i, s in enumerate(structure) if s.specie.symbol == element], dtype=int)


def _oxidation(structure: Structure) -> dict[str, float]:
    guesses = structure.composition.oxi_state_guesses(max_sites=-50)
    return dict(guesses[0]) if guesses else {}


def vacancies(
    structure: Structure,
    element: str = "Li",
    target_fraction: float = 0.9,
    n_structures: int = 1,
    compensation: Compensation = "none",
    anion: str | None = None,
    seed: int = 0,
    entry: str = "",
) -> list[Structure]:
    """Remove a fraction of one element at random (e.g. Li-deficient cells).

    Parameters
    ----------
    structure
        The parent cell (usually a supercell).
    element
        Element to remove.
    target_fraction
        Fraction of the ``element`` sites kept (0.9 keeps 90 %; the number removed is rounded).
    n_structures
        Number of cells with independent random choices.
    compensation
        ``none``: leave the ionic charge and record it (``net_charge``); ``anion``: also remove the number of
        ``anion`` atoms that restores neutrality (Schottky-like, e.g. Li2O loss), flagged if not an integer;
        ``electronic``: no further change, recorded as hole/electron compensation by a redox-active ion
        (e.g. Co3+ -> Co4+ in delithiated LiCoO2).
    anion
        Anion removed for ``compensation="anion"`` (default: the most electronegative element).
    seed
        Seed; cell ``k`` draws from ``numpy.random.default_rng([seed, k])`` (series never overlap).
    entry
        Name used in error messages.
    """
    check_element(element, entry)
    idx = _indices(structure, element)
    if len(idx) == 0:
        raise StructureError(f"{entry}: {structure.composition.reduced_formula} has no {element} to remove")
    if not 0.0 <= target_fraction < 1.0:
        raise StructureError(f"{entry}: target_fraction must be in [0, 1), got {target_fraction}")
    n_remove = round(len(idx) * (1.0 - target_fraction))
    if n_remove == 0:
        raise StructureError(
            f"{entry}: removing {1 - target_fraction:.1%} of {len(idx)} {element} rounds to zero; use a "
            "larger supercell or a smaller target_fraction"
        )
    oxi = _oxidation(structure)
    out = []
    for k in range(n_structures):
        rng = np.random.default_rng([seed, k])
        remove = list(rng.choice(idx, size=n_remove, replace=False))
        extra: dict = {}
        if compensation == "anion":
            an = anion or str(max(structure.composition.elements, key=lambda e: e.X))
            if an not in oxi or element not in oxi:
                raise StructureError(f"{entry}: no oxidation states for {structure.composition.reduced_formula}")
            n_an = -n_remove * oxi[element] / oxi[an]
            n_an_int = round(n_an)
            an_idx = _indices(structure, an)
            remove += list(rng.choice(an_idx, size=min(n_an_int, len(an_idx)), replace=False))
            extra["anions_removed"] = n_an_int
            if abs(n_an - n_an_int) > 1e-6:
                extra["compensation_incomplete"] = True
        s = clean_copy(structure)
        s.remove_sites(sorted(int(i) for i in remove))
        q = net_charge(s, structure)
        if compensation == "electronic" and q is not None:
            extra["electronic_compensation"] = -q
        out.append(
            tag(
                s,
                "vacancy",
                f"{_MOD}.vacancies",
                {
                    "element": element,
                    "target_fraction": target_fraction,
                    "compensation": compensation,
                    "seed": seed, "index": k,
                },
                structure,
                removed=int(n_remove),
                fraction_kept=(len(idx) - n_remove) / len(idx),
                net_charge=q,
                charge_neutral=(q == 0.0) or compensation == "electronic",
                **extra,
            )
        )
    return out


def antisites(
    structure: Structure,
    species_a: str,
    species_b: str,
    n_pairs: int = 1,
    n_structures: int = 1,
    seed: int = 0,
    entry: str = "",
) -> list[Structure]:
    """Swap ``n_pairs`` random pairs of ``species_a`` and ``species_b`` sites (composition unchanged).

    Parameters
    ----------
    structure
        The parent cell.
    species_a, species_b
        The two elements exchanged (e.g. Li and Co: Li/Co antisite in LiCoO2).
    n_pairs
        Pairs swapped per cell.
    n_structures
        Number of cells.
    seed
        Seed; cell ``k`` draws from ``numpy.random.default_rng([seed, k])`` (series never overlap).
    entry
        Name used in error messages.
    """
    check_element(species_a, entry)
    check_element(species_b, entry)
    ia, ib = _indices(structure, species_a), _indices(structure, species_b)
    if min(len(ia), len(ib)) < n_pairs:
        raise StructureError(
            f"{entry}: {structure.composition.reduced_formula} has fewer than {n_pairs} {species_a}/{species_b} sites"
        )
    out = []
    for k in range(n_structures):
        rng = np.random.default_rng([seed, k])
        sa = rng.choice(ia, n_pairs, replace=False)
        sb = rng.choice(ib, n_pairs, replace=False)
        s = clean_copy(structure)
        for i, j in zip(sa, sb, strict=True):
            s.replace(int(i), species_b)
            s.replace(int(j), species_a)
        out.append(
            tag(
                s,
                "antisite",
                f"{_MOD}.antisites",
                {"species_a": species_a, "species_b": species_b, "n_pairs": n_pairs, "seed": seed, "index": k},
                structure,
                net_charge=0.0,
                charge_neutral=True,
            )
        )
    return out


def substitute(
    structure: Structure,
    host: str,
    dopant: str,
    n_dopants: int = 1,
    dopant_oxidation: int | None = None,
    compensate_with: str | None = "Li",
    n_structures: int = 1,
    seed: int = 0,
    entry: str = "",
) -> list[Structure]:
    """Substitutional doping, e.g. Ta/Nb on Zr or Co on Li/La in LLZO, with stated charge compensation.

    Parameters
    ----------
    structure
        The parent cell.
    host
        Element replaced.
    dopant
        Element put in its place.
    n_dopants
        Number of substituted sites per cell.
    dopant_oxidation
        Oxidation state of the dopant (default: its highest common oxidation state, e.g. Ta +5, Co +3).
    compensate_with
        Mobile ion removed (dopant of higher charge) to keep the cell neutral: ``n_dopants * (q_dopant -
        q_host) / q_ion`` ions, e.g. one Li vacancy per Ta(5+) on Zr(4+), two per Co(3+) on Li(+).  If the
        dopant has the lower charge or the count is not an integer, or ``None``: no compensation, the net
        charge is recorded (``charge_neutral: false``).
    n_structures
        Number of cells.
    seed
        Seed; cell ``k`` draws from ``numpy.random.default_rng([seed, k])`` (series never overlap).
    entry
        Name used in error messages.
    """
    check_element(host, entry)
    el = check_element(dopant, entry)
    idx = _indices(structure, host)
    if len(idx) < n_dopants:
        raise StructureError(
            f"{entry}: {structure.composition.reduced_formula} has {len(idx)} {host} sites, fewer than "
            f"n_dopants={n_dopants}"
        )
    oxi = _oxidation(structure)
    q_dop = dopant_oxidation if dopant_oxidation is not None else max(el.common_oxidation_states or (0,))
    q_host = oxi.get(host)
    n_comp = 0
    if compensate_with and q_host is not None and compensate_with in oxi:
        check_element(compensate_with, entry)
        need = n_dopants * (q_dop - q_host) / oxi[compensate_with]
        if need > 0 and abs(need - round(need)) < 1e-6:
            n_comp = round(need)
    out = []
    for k in range(n_structures):
        rng = np.random.default_rng([seed, k])
        s = clean_copy(structure)
        chosen = rng.choice(idx, n_dopants, replace=False)
        for i in chosen:
            s.replace(int(i), dopant)
        if n_comp:
            comp_idx = np.array([i for i in _indices(s, compensate_with) if i not in set(chosen)])
            if len(comp_idx) < n_comp:
                raise StructureError(f"{entry}: not enough {compensate_with} to compensate {n_dopants} {dopant}")
            s.remove_sites(sorted(int(i) for i in rng.choice(comp_idx, n_comp, replace=False)))
        q = _charge_with(s, oxi, dopant, q_dop)
        out.append(
            tag(
                s,
                "doped",
                f"{_MOD}.substitute",
                {
                    "host": host,
                    "dopant": dopant,
                    "n_dopants": n_dopants,
                    "dopant_oxidation": q_dop,
                    "compensate_with": compensate_with,
                    "seed": seed, "index": k,
                },
                structure,
                compensating_vacancies=n_comp,
                net_charge=q,
                charge_neutral=q == 0.0,
            )
        )
    return out


def _charge_with(structure: Structure, oxi: dict[str, float], extra_el: str, extra_q: float) -> float | None:
    table = {**oxi, extra_el: extra_q}
    total = 0.0
    for el, amt in structure.composition.element_composition.items():
        if str(el) not in table:
            return None
        total += table[str(el)] * amt
    return round(total, 6)


def interdiffuse(
    interface: Structure,
    species_a: str,
    species_b: str,
    n_swaps: int = 1,
    max_depth: float = 6.0,
    n_structures: int = 1,
    seed: int = 0,
    entry: str = "",
) -> list[Structure]:
    """Swap cations across an interface: ``species_a`` from the film side with ``species_b`` from the substrate.

    The two sides are read from the ``interface_label`` site property (``film``/``substrate``) that
    pymatgen's :class:`~pymatgen.core.interface.Interface` carries; without it, the cell is split at the middle
    of the c axis (lower half = substrate).  Only atoms within ``max_depth`` (Å, along c) of the boundary plane
    between the two sides are chosen.

    Parameters
    ----------
    interface
        The interface cell.
    species_a
        Element taken from the film side (e.g. Co from LiCoO2).
    species_b
        Element taken from the substrate side (e.g. Li or La from LLZO).
    n_swaps
        Pairs exchanged per cell.
    max_depth
        Largest distance (Å) along the normal of a swapped atom from the interface plane.
    n_structures
        Number of cells.
    seed
        Seed; cell ``k`` draws from ``numpy.random.default_rng([seed, k])`` (series never overlap).
    entry
        Name used in error messages.
    """
    check_element(species_a, entry)
    check_element(species_b, entry)
    labels = interface.site_properties.get("interface_label")
    z = interface.cart_coords @ (interface.lattice.matrix[2] / np.linalg.norm(interface.lattice.matrix[2]))
    if labels is None:
        mid = np.median(z)
        labels = ["substrate" if zi < mid else "film" for zi in z]
    labels = [str(lab).split("_")[0] for lab in labels]
    z_sub = max(z[i] for i, lab in enumerate(labels) if lab == "substrate")
    z_film = min(z[i] for i, lab in enumerate(labels) if lab == "film")
    plane = 0.5 * (z_sub + z_film)
    film = [i for i, s in enumerate(interface) if labels[i] == "film" and s.specie.symbol == species_a]
    film = [i for i in film if abs(z[i] - plane) <= max_depth]
    sub = [i for i, s in enumerate(interface) if labels[i] == "substrate" and s.specie.symbol == species_b]
    sub = [i for i in sub if abs(z[i] - plane) <= max_depth]
    if min(len(film), len(sub)) < n_swaps:
        raise StructureError(
            f"{entry}: only {len(film)} {species_a} (film) and {len(sub)} {species_b} (substrate) atoms lie within "
            f"{max_depth} Å of the interface; raise max_depth or lower n_swaps"
        )
    out = []
    for k in range(n_structures):
        rng = np.random.default_rng([seed, k])
        s = clean_copy(interface)
        for i, j in zip(rng.choice(film, n_swaps, replace=False), rng.choice(sub, n_swaps, replace=False), strict=True):
            s.replace(int(i), species_b, properties=s[int(i)].properties)
            s.replace(int(j), species_a, properties=s[int(j)].properties)
        out.append(
            tag(
                s,
                "interdiffused",
                f"{_MOD}.interdiffuse",
                {
                    "species_a": species_a,
                    "species_b": species_b,
                    "n_swaps": n_swaps,
                    "max_depth": max_depth,
                    "seed": seed, "index": k,
                },
                interface,
                interface_plane_z=float(plane),
            )
        )
    return out
