"""Provenance carried by every generated structure and small helpers shared by the generators.

Every generator sets ``structure.properties["provenance"]`` to a JSON-able dict::

    {"family": "slab", "generator": "mlipflow.structures.slabs.generate_slabs",
     "parameters": {...}, "parent": "LiCoO2 (prototype)"}

The dataset layer reads exactly this key.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from monty.json import jsanitize
from pymatgen.core import Composition, Element, Structure

from mlipflow.errors import StructureError

FAMILIES = (
    "bulk",
    "strained",
    "rattled",
    "perturbed",
    "vacancy",
    "antisite",
    "doped",
    "interdiffused",
    "slab",
    "grain_boundary",
    "interface",
    "amorphous",
    "mixture",
    "isolated_atom",
)


def describe(structure: Structure) -> str:
    """A short label of a structure for the ``parent`` field: formula, atom count and family if known."""
    prov = structure.properties.get("provenance") or {}
    label = prov.get("label")
    if label:
        return str(label)
    family = prov.get("family")
    text = f"{structure.composition.reduced_formula} ({len(structure)} atoms)"
    return f"{family}:{text}" if family else text


def tag(
    structure: Structure,
    family: str,
    generator: str,
    parameters: dict[str, Any],
    parent: Structure | str | None,
    **extra: Any,
) -> Structure:
    """Set ``structure.properties["provenance"]`` and return the structure.

    Parameters
    ----------
    structure
        The generated structure (modified in place).
    family
        One of :data:`FAMILIES`.
    generator
        Dotted name of the generating function.
    parameters
        The generator's parameters; made JSON-able with ``monty.json.jsanitize``.
    parent
        The parent structure (described with :func:`describe`) or a label.
    **extra
        Further JSON-able keys (e.g. ``sigma``, ``strain``, ``polar``) stored in the same dict.
    """
    if family not in FAMILIES:
        raise StructureError(f"unknown structure family {family!r}; use one of {', '.join(FAMILIES)}")
    parent_label = describe(parent) if isinstance(parent, Structure) else (parent or "")
    prov = {
        "family": family,
        "generator": generator,
        "parameters": jsanitize(parameters, strict=False),
        "parent": parent_label,
    }
    prov.update(jsanitize(extra, strict=False))
    json.dumps(prov)  # fail early if something is not JSON-able
    structure.properties = {**structure.properties, "provenance": prov}
    return structure


def provenance(structure: Structure) -> dict[str, Any]:
    """The provenance dict of a structure (empty dict when it has none)."""
    return dict(structure.properties.get("provenance") or {})


def clean_copy(structure: Structure) -> Structure:
    """An ordered copy without provenance (generators start from this)."""
    s = structure.copy()
    s.properties = {k: v for k, v in s.properties.items() if k != "provenance"}
    return s


def check_element(symbol: str, entry: str = "") -> Element:
    """Return the :class:`Element` for ``symbol`` or raise :class:`StructureError` naming ``entry``."""
    where = f"{entry}: " if entry else ""
    try:
        return Element(str(symbol))
    except (ValueError, KeyError):
        raise StructureError(f"{where}unknown element {symbol!r}; use a chemical symbol such as Li, Co, Ta") from None


def check_composition(formula: str, entry: str = "") -> Composition:
    """Parse a formula, raising :class:`StructureError` (naming ``entry``) on unknown elements."""
    where = f"{entry}: " if entry else ""
    try:
        comp = Composition(formula)
    except (ValueError, KeyError) as exc:
        raise StructureError(f"{where}cannot read formula {formula!r} ({exc}); write e.g. Li3PS4") from None
    for el in comp.elements:
        check_element(str(el), entry)
    if comp.num_atoms <= 0:
        raise StructureError(f"{where}formula {formula!r} has no atoms")
    return comp


def min_distance(structure: Structure) -> float:
    """Smallest interatomic distance (Å) of a periodic structure (``inf`` for one atom far from its images)."""
    if len(structure) == 1:
        return float(min(structure.lattice.abc))
    dm = structure.distance_matrix + np.eye(len(structure)) * 1e9
    d = float(dm.min())
    # self-images across small cells
    return min(d, float(min(structure.lattice.abc)))


def perpendicular_widths(structure: Structure) -> np.ndarray:
    """Distances (Å) between opposite cell faces, i.e. V / |b x c|, V / |c x a|, V / |a x b|."""
    m = structure.lattice.matrix
    vol = abs(np.linalg.det(m))
    return np.array([vol / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in range(3)])


def vacuum_length(structure: Structure, axis: int = 2) -> float:
    """Largest empty gap (Å) along the cell's ``axis`` (measured normal to the other two vectors)."""
    frac = np.sort(structure.frac_coords[:, axis] % 1.0)
    gaps = np.diff(np.concatenate([frac, [frac[0] + 1.0]]))
    return float(gaps.max() * perpendicular_widths(structure)[axis])


def net_charge(structure: Structure, reference: Structure | None = None) -> float | None:
    """Net ionic charge (e) from the oxidation states of ``reference`` (default: the structure itself).

    Oxidation states are guessed once per element with ``Composition.oxi_state_guesses`` on the reference
    (the stoichiometric parent).  Returns ``None`` when no guess exists (e.g. metals, mixtures of valence).
    """
    ref = reference if reference is not None else structure
    guesses = ref.composition.oxi_state_guesses(max_sites=-50)
    if not guesses:
        return 0.0 if all(el.is_metal for el in ref.composition.elements) else None
    oxi = guesses[0]
    total = 0.0
    for el, amt in structure.composition.element_composition.items():
        if str(el) not in oxi:
            return None
        total += oxi[str(el)] * amt
    return round(float(total), 6)
