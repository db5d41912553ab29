"""Charge, spin and k-points of one frame, as DFT labelers must set them.

One home for the rules the CP2K and VASP labelers share (each rule is named in the labelers' settings, so
every choice is part of the settings hash; what a rule gives for a frame follows from the frame's
structure, whose charge is part of its content hash):

* **charge** (e): the provenance's ``charge`` if a generator set it; else 0 when the generator compensated
  the defect electronically (``electronic_compensation``); else the ionic ``net_charge`` the generator
  recorded (a Li vacancy left without compensation is a ``-1`` cell); else 0.  It is stored as the
  pymatgen ``Structure.charge`` of the frame (see :func:`with_system_charge`);
* **electrons**: the sum of the pseudopotential valences (or, without them, of the atomic numbers; the
  parity is the same because cores are closed shells) minus the charge;
* **multiplicity**: an isolated neutral atom (one site) takes its Hund's-rule ground state (Li 2, O 3,
  Mn 6); any other frame the lowest one its electron count allows (1 for even, 2 for odd counts);
* **spin**: unrestricted whenever the multiplicity is above 1, whatever the labeler's default;
* **k-points**: a mesh (the code sets its centring) with ``n_i = max(1, ceil(|b_i| / kspacing))``
  (``|b_i|`` the reciprocal vector length including 2π, Å⁻¹); an axis with at least ``vacuum_gap`` Å of
  empty space (molecules, isolated atoms, slabs) gets 1.  Γ only is refused for a cell whose mesh has more
  than one point unless the labeler was told so (``allow_small_gamma``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Element, Structure

from mlipflow.errors import LabelingError
from mlipflow.structures.provenance import vacuum_length

#: version of these rules; part of the DFT labelers' settings so that a change of rule changes every id
RULES_VERSION = 1


def structure_charge(structure: Structure) -> int:
    """The structure's total charge (e) as an integer (0 when unset)."""
    with warnings.catch_warnings():  # pymatgen warns when the charge differs from the oxidation states
        warnings.simplefilter("ignore", UserWarning)
        q = getattr(structure, "_charge", None)
        if q is None:
            q = structure.charge
    return round(float(q or 0.0))


def system_charge(structure: Structure, provenance: Any = None) -> int:
    """The total charge (e) a DFT label of ``structure`` is computed with (rule in the module docstring).

    Parameters
    ----------
    structure
        The frame's structure; its own ``properties["provenance"]`` is used when ``provenance`` is None.
    provenance
        The frame's provenance (a :class:`~mlipflow.data.Provenance` or a dict).

    Raises
    ------
    LabelingError
        If the recorded charge is not an integer number of electrons.
    """
    if provenance is None:
        prov = dict((structure.properties or {}).get("provenance") or {})
    elif isinstance(provenance, dict):
        prov = dict(provenance)
    else:
        prov = provenance.model_dump()
    if prov.get("charge") is not None:
        value: Any = prov["charge"]
    elif prov.get("electronic_compensation") is not None:
        value = 0.0
    else:
        value = prov.get("net_charge")
        if isinstance(value, dict):  # interfaces record one ionic charge per side: the cell carries their sum
            parts = list(value.values())
            value = sum(parts) if parts and all(isinstance(v, int | float) for v in parts) else None
    if value is None:
        return 0
    q = float(value)
    if abs(q - round(q)) > 1e-6:
        raise LabelingError(
            f"{structure.composition.reduced_formula} ({len(structure)} atoms): net charge {q:g} e is not an "
            "integer number of electrons; give provenance charge=<int> or compensate the defect"
        )
    return round(q)


def with_system_charge(structure: Structure, provenance: Any = None) -> Structure:
    """A copy of ``structure`` carrying :func:`system_charge` as its pymatgen ``charge`` (oxidation states dropped)."""
    q = system_charge(structure, provenance)
    out = structure.copy()
    out.remove_oxidation_states()  # the total charge, not ionic labels, is what the DFT input takes
    out._charge = float(q) if q else None  # pymatgen's own attribute; None keeps neutral frames' ids
    return out


def electron_count(structure: Structure, valence: dict[str, int] | None = None) -> int:
    """Electrons in the calculation: valence per element (atomic numbers if None) minus the charge."""
    total = 0
    for site in structure:
        el = site.specie.symbol
        if valence is None:
            total += Element(el).Z
        else:
            if el not in valence:
                raise LabelingError(f"no valence electron count known for {el}")
            total += int(valence[el])
    return total - structure_charge(structure)


def hund_multiplicity(symbol: str) -> int:
    """Ground-state spin multiplicity of a neutral free atom by Hund's first rule (Li 2, O 3, Mn 6, Cu 2)."""
    unpaired = 0
    for _n, orbital, occupation in Element(symbol).full_electronic_structure:
        capacity = 2 * (2 * "spdfg".index(orbital) + 1)
        occ = int(occupation)
        unpaired += occ if occ <= capacity // 2 else capacity - occ
    return unpaired + 1


def multiplicity(structure: Structure, valence: dict[str, int] | None = None) -> int:
    """Spin multiplicity 2S+1 of the frame (rule in the module docstring)."""
    n = electron_count(structure, valence)
    if len(structure) == 1 and structure_charge(structure) == 0:
        m = hund_multiplicity(structure[0].specie.symbol)
        if (m - 1) % 2 == n % 2:
            return m
    return 1 if n % 2 == 0 else 2


def kpoint_mesh(structure: Structure, kspacing: float, vacuum_gap: float = 4.0) -> tuple[int, int, int]:
    """k-point mesh for a reciprocal spacing ``kspacing`` (Å⁻¹, 2π included); 1 across ``vacuum_gap`` Å."""
    if kspacing <= 0:
        raise LabelingError(f"kspacing must be positive (Å⁻¹), got {kspacing}")
    lengths = np.linalg.norm(structure.lattice.reciprocal_lattice.matrix, axis=1)
    mesh = []
    for axis, b in enumerate(lengths):
        if vacuum_length(structure, axis) >= vacuum_gap:
            mesh.append(1)
        else:
            mesh.append(max(1, math.ceil(b / kspacing - 1e-9)))
    return mesh[0], mesh[1], mesh[2]


@dataclass(frozen=True)
class ElectronicState:
    """What a DFT input must say about one frame: charge (e), multiplicity, spin and k-point mesh."""

    charge: int
    electrons: int
    multiplicity: int
    unrestricted: bool
    kpoints: tuple[int, int, int]

    @property
    def gamma_only(self) -> bool:
        return self.kpoints == (1, 1, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "charge": self.charge, "electrons": self.electrons, "multiplicity": self.multiplicity,
            "unrestricted": self.unrestricted, "kpoints": list(self.kpoints),
        }  # fmt: skip


def electronic_state(
    structure: Structure,
    *,
    valence: dict[str, int] | None = None,
    spin_polarized: bool = False,
    kpoints: str = "auto",
    kspacing: float = 0.5,
    vacuum_gap: float = 4.0,
    allow_small_gamma: bool = False,
) -> ElectronicState:
    """Charge, multiplicity, spin and k-points of one frame (rules in the module docstring).

    Parameters
    ----------
    structure
        The frame (its ``charge`` set by :func:`with_system_charge`).
    valence
        Valence electrons per element of the pseudopotentials (None: atomic numbers, parity only).
    spin_polarized
        The labeler's default spin treatment (unrestricted is switched on for open shells regardless).
    kpoints
        ``auto`` (mesh from ``kspacing``) or ``gamma`` (Γ only).
    kspacing
        Reciprocal spacing of the mesh (Å⁻¹, 2π included).
    vacuum_gap
        Empty space (Å) along an axis above which that axis gets one k-point.
    allow_small_gamma
        Accept Γ only (``kpoints="gamma"``) for cells the mesh rule would sample with more points.

    Raises
    ------
    LabelingError
        For Γ only on a cell that needs more k-points (unless allowed) or an unknown ``kpoints`` mode.
    """
    mult = multiplicity(structure, valence)
    mesh = kpoint_mesh(structure, kspacing, vacuum_gap)
    if kpoints == "gamma":
        if mesh != (1, 1, 1) and not allow_small_gamma:
            widths = ", ".join(f"{w:.2f}" for w in _widths(structure))
            raise LabelingError(
                f"Γ-only label refused for {structure.composition.reduced_formula} ({len(structure)} atoms, cell "
                f"widths {widths} Å): kspacing {kspacing} Å⁻¹ needs a {mesh[0]}x{mesh[1]}x{mesh[2]} mesh; use "
                "kpoints='auto', or allow_small_gamma=True to accept Γ only"
            )
        mesh = (1, 1, 1)
    elif kpoints != "auto":
        raise LabelingError(f"kpoints must be 'auto' or 'gamma', got {kpoints!r}")
    return ElectronicState(
        charge=structure_charge(structure),
        electrons=electron_count(structure, valence),
        multiplicity=mult,
        unrestricted=bool(spin_polarized or mult > 1),
        kpoints=mesh,
    )


def _widths(structure: Structure) -> list[float]:
    from mlipflow.structures.provenance import perpendicular_widths

    return [float(w) for w in perpendicular_widths(structure)]
