"""Content hashes: the identity of a structure and of a label.

A frame's content hash is the SHA-256 of (canonical structure, labeler settings hash), truncated to
32 hex digits (128 bits).  The canonical structure is stated to a tolerance:

* the lattice matrix rounded to ``1e-4`` Å;
* every fractional coordinate wrapped into [0, 1) and rounded to 5 decimals (about 1e-4 Å in a
  10 Å cell), after rounding wrapped again so that 0.999996 and 0.0 agree;
* sites sorted by (atomic number, rounded coordinates), so site order does not matter;
* site magnetic moments and other site properties are not part of the identity;
* a non-zero total charge (pymatgen's ``Structure.charge``, e) of a structure without oxidation states is:
  a charged and a neutral cell of the same geometry are different systems.

Two structures that differ by less than these tolerances get the same hash; labeling the same
structure with another labeler (or other settings) gives another hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from pymatgen.core import Structure

LATTICE_DECIMALS = 4
FRAC_DECIMALS = 5
HASH_LENGTH = 32


def _sha(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def settings_hash(name: str, version: str | None, settings: dict[str, Any]) -> str:
    """Hash of a labeler's identity and settings (JSON-canonical, key order independent)."""
    return _sha({"name": name, "version": version, "settings": settings})


def structure_hash(structure: Structure) -> str:
    """Hash of a structure in its canonical form (see the module docstring for the tolerances)."""
    lattice = np.round(structure.lattice.matrix, LATTICE_DECIMALS) + 0.0  # + 0.0 folds -0.0
    frac = np.round(np.round(structure.frac_coords, FRAC_DECIMALS) % 1.0, FRAC_DECIMALS) % 1.0
    numbers = [site.specie.Z if hasattr(site.specie, "Z") else str(site.specie) for site in structure]
    sites = sorted(
        (int(z), *(f"{x:.{FRAC_DECIMALS}f}" for x in coords)) for z, coords in zip(numbers, frac, strict=True)
    )
    payload: dict[str, Any] = {"lattice": [f"{x:.{LATTICE_DECIMALS}f}" for x in lattice.ravel()], "sites": sites}
    # pymatgen's total charge (e); neutral frames keep their ids.  A structure with oxidation states gets a
    # charge (their sum) from as_dict/from_dict round trips: there it is not an identity, so it is not hashed.
    charge = getattr(structure, "_charge", None)
    if charge and not any(getattr(sp, "oxi_state", None) for sp in structure.species):
        payload["charge"] = round(float(charge))
    return _sha(payload)


def content_hash(structure: Structure, labeler_settings_hash: str) -> str:
    """The identity of a label: canonical structure plus the labeler settings that label it."""
    return _sha({"structure": structure_hash(structure), "labeler": labeler_settings_hash})
