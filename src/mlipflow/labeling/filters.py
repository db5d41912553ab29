"""Label sanity filters: a label that fails one is kept with its reason (status ``filtered``), never deleted.

Before labeling (as dpgen2 does): a structure with two atoms closer than their pair floor
(:func:`mlipflow.structures.bonds.default_pair_floor`, or per-pair floors given) is not sent to the labeler at
all; its frame fails with the atoms and distance named, so a broken MD frame never costs a DFT run.

After labeling, in order: NaN or infinite values; missing stress when stress is required; the largest force
(eV/Å); the energy per atom against the other labels of the same structure family and labeler (a robust
median/MAD outlier test, applied once the family has enough labels).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Structure

from mlipflow.labeling.base import LabelResult

#: scale of the median absolute deviation to a normal standard deviation
MAD_TO_SIGMA = 1.4826


@dataclass
class FamilyEnergyStats:
    """Energies per atom (eV/atom) of accepted labels, grouped by structure family."""

    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, family: str | None, energy_per_atom: float) -> None:
        self.values[family or "unknown"].append(float(energy_per_atom))

    def reference(self, family: str | None) -> tuple[float, float, int] | None:
        """(median eV/atom, robust sigma eV/atom, count) of a family, or None if it has no labels."""
        vals = self.values.get(family or "unknown")
        if not vals:
            return None
        arr = np.asarray(vals)
        median = float(np.median(arr))
        sigma = float(np.median(np.abs(arr - median)) * MAD_TO_SIGMA)
        return median, sigma, len(arr)

    @classmethod
    def from_frames(cls, frames_collection: Any, labeler_hash: str) -> FamilyEnergyStats:
        """Collect the energies per atom of labeled frames of one labeler from the frames collection."""
        stats = cls()
        query = {"labeler_hash": labeler_hash, "status": "labeled"}
        for doc in frames_collection.find(query, {"energy": 1, "natoms": 1, "provenance.family": 1}):
            if doc.get("energy") is not None and doc.get("natoms"):
                stats.add((doc.get("provenance") or {}).get("family"), doc["energy"] / doc["natoms"])
        return stats


@dataclass
class SanityFilter:
    """Decide whether a label may enter the dataset.

    Parameters
    ----------
    max_force
        Largest allowed force component norm (eV/Å); larger means a broken structure or calculation.
    require_stress
        Filter labels without a stress tensor.
    max_energy_deviation
        Smallest deviation of the energy per atom from the family median that counts as an outlier
        (eV/atom), whatever the spread of the family.
    energy_sigma_factor
        A label is an outlier when its energy per atom is farther than
        ``max(max_energy_deviation, energy_sigma_factor * robust sigma)`` from the family median.
    min_family_size
        Labels a family needs before the energy outlier test applies.
    min_distance_floors
        Closest allowed distance per element pair before labeling (Å, keys ``"O-O"``); other pairs use
        :func:`~mlipflow.structures.bonds.default_pair_floor`.  ``check_structures=False`` turns the check off.
    check_structures
        Refuse structures with atoms closer than their floors before they are labeled.
    """

    max_force: float = 50.0
    require_stress: bool = False
    max_energy_deviation: float = 1.0
    energy_sigma_factor: float = 10.0
    min_family_size: int = 8
    min_distance_floors: dict[str, float] = field(default_factory=dict)
    check_structures: bool = True

    def check_structure(self, structure: Structure) -> str | None:
        """The reason a structure must not be labeled (two atoms closer than their floor), or ``None``."""
        if not self.check_structures or len(structure) < 2:
            return None
        from mlipflow.structures.bonds import closest_violation, default_pair_floor, pair_key

        elements = sorted({sp.symbol for sp in structure.species})
        given = {pair_key(*k.split("-")): v for k, v in self.min_distance_floors.items()}
        floors = {pair_key(a, b): given.get(pair_key(a, b), default_pair_floor(a, b))
                  for i, a in enumerate(elements) for b in elements[i:]}
        ratio, i, j, d = closest_violation(structure, floors)
        if ratio >= 1.0:
            return None
        a, b = structure[i].specie.symbol, structure[j].specie.symbol
        return (f"atoms {i} ({a}) and {j} ({b}) are {d:.3f} Å apart, below the {a}-{b} floor of "
                f"{floors[pair_key(a, b)]:.2f} Å: not labeled")

    def check(
        self,
        result: LabelResult,
        natoms: int,
        family: str | None = None,
        stats: FamilyEnergyStats | None = None,
    ) -> str | None:
        """Return the reason a label is filtered, or ``None`` if it passes.

        Parameters
        ----------
        result
            The label (eV, eV/Å, eV/Å³).
        natoms
            Number of atoms of the structure.
        family
            Structure family from the frame's provenance (``bulk``, ``slab``, ``interface``...).
        stats
            Energies per atom of the family's accepted labels (same labeler).
        """
        if result.energy is None or not math.isfinite(result.energy):
            return f"energy is not a finite number ({result.energy})"
        forces = np.asarray(result.forces, dtype=float)
        if forces.shape != (natoms, 3):
            return f"forces have shape {forces.shape}, expected ({natoms}, 3)"
        if not np.all(np.isfinite(forces)):
            return "forces contain NaN or infinite values"
        if result.stress is None:
            if self.require_stress:
                return "stress is required but the labeler returned none"
        elif not np.all(np.isfinite(np.asarray(result.stress, dtype=float))):
            return "stress contains NaN or infinite values"
        fmax = float(np.max(np.linalg.norm(forces, axis=1))) if natoms else 0.0
        if fmax > self.max_force:
            return f"largest force {fmax:.3g} eV/Å exceeds max_force={self.max_force} eV/Å"
        if stats is not None:
            ref = stats.reference(family)
            if ref is not None and ref[2] >= self.min_family_size:
                median, sigma, count = ref
                epa = result.energy / natoms
                limit = max(self.max_energy_deviation, self.energy_sigma_factor * sigma)
                if abs(epa - median) > limit:
                    return (
                        f"energy per atom {epa:.4f} eV/atom is {abs(epa - median):.3f} eV/atom from "
                        f"the median {median:.4f} eV/atom of family {family or 'unknown'!r} "
                        f"({count} labels; limit {limit:.3f} eV/atom)"
                    )
        return None
