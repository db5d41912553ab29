"""The labeled frame: one structure with its reference energy, forces and stress, and its history.

Units: energy in eV, forces in eV/Å, stress in GPa with ASE's sign convention (positive = tensile,
i.e. ``atoms.get_stress()`` divided by ``ase.units.GPa``), magnetic moments in Bohr magnetons.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from monty.json import jsanitize
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.data.hashing import content_hash, settings_hash

FrameStatus = Literal["pending", "running", "labeled", "failed", "filtered"]
LabelerKind = Literal["dft", "surrogate", "imported"]


def utcnow() -> datetime:
    """Timezone-aware current time in UTC (stored as such)."""
    return datetime.now(UTC)


class LabelerInfo(BaseModel):
    """Who made a label, and with which settings.

    Parameters
    ----------
    name
        The labeler's name, e.g. ``"cp2k-pbe"``, ``"vasp-pbe+u"``, ``"chgnet"``.
    kind
        ``"dft"`` for a reference electronic-structure calculation, ``"surrogate"`` for any other
        calculator (a universal potential, a toy model), ``"imported"`` when the origin is a file
        whose labeler is only known by the name the user gave.
    version
        Version of the code or model.
    settings
        Everything that changes the physics of the label (functional, cutoffs, U values, ...).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: LabelerKind
    version: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)

    @property
    def settings_hash(self) -> str:
        """Hash of name, version and settings (part of every frame's content hash)."""
        return settings_hash(self.name, self.version, self.settings)

    @property
    def is_dft(self) -> bool:
        return self.kind == "dft"

    def describe(self) -> str:
        """Short human label that never passes a surrogate off as DFT, e.g. ``chgnet 0.3.0 (surrogate)``."""
        version = f" {self.version}" if self.version else ""
        return f"{self.name}{version} ({self.kind})"


#: structure family of a single atom in a large box, labeled for its isolated-atom energy (MACE's E0)
ISOLATED_ATOM = "isolated_atom"


class Provenance(BaseModel):
    """Where a frame came from.  Extra keys are kept (generators may add their own)."""

    model_config = ConfigDict(extra="allow")

    origin: str = "unknown"  # generator, sampler, aimd, import, ...
    family: str | None = None  # structure family: bulk, strained, slab, grain_boundary, interface, ...
    config_type: str | None = None
    campaign: str | None = None
    iteration: int | None = None
    generator: str | None = None
    parameters: dict[str, Any] | None = None
    parent: str | None = None
    temperature: float | None = None  # K
    md_step: int | None = None
    source: str | None = None  # file or trajectory the frame was read from
    source_index: int | None = None
    group: str | None = None  # frames of one group (a trajectory, a series) share a split


class LabeledFrame(BaseModel):
    """A structure with its labels (or its labeling state) and provenance.

    ``energy``/``forces`` are ``None`` until the frame is labeled.  A frame whose labeling failed or
    whose label was filtered keeps its reason in ``failure``; such frames never enter a training set.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    structure: Structure
    labeler: LabelerInfo
    energy: float | None = None
    forces: list[list[float]] | None = None
    stress: list[list[float]] | None = None
    magmoms: list[float] | None = None
    provenance: Provenance = Field(default_factory=Provenance)
    corrections: list[dict[str, Any]] = Field(default_factory=list)
    status: FrameStatus = "labeled"
    failure: str | None = None
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @field_validator("structure", mode="before")
    @classmethod
    def _structure_from_dict(cls, value: Any) -> Structure:
        if isinstance(value, dict):
            return Structure.from_dict(value)
        return value

    @property
    def content_hash(self) -> str:
        """Identity of this label: canonical structure + labeler settings (see ``data.hashing``)."""
        return content_hash(self.structure, self.labeler.settings_hash)

    @property
    def natoms(self) -> int:
        return len(self.structure)

    @property
    def config_type(self) -> str:
        """MACE ``config_type``: the provenance's, else the structure family, else ``Default``."""
        return self.provenance.config_type or self.provenance.family or "Default"

    def to_document(self) -> dict[str, Any]:
        """The MongoDB document (``_id`` is the content hash)."""
        doc = self.model_dump(mode="json", exclude={"structure", "created_at", "updated_at"})
        doc.update(
            _id=self.content_hash,
            structure=jsanitize(self.structure.as_dict(), strict=False),
            formula=self.structure.composition.reduced_formula,
            natoms=self.natoms,
            elements=sorted(el.symbol for el in self.structure.composition.elements),
            labeler_hash=self.labeler.settings_hash,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> LabeledFrame:
        """Rebuild a frame from its MongoDB document."""
        fields = {k: v for k, v in doc.items() if k in cls.model_fields}
        return cls(**fields)

    def to_atoms(self) -> Atoms:
        """ASE Atoms with a single-point calculator holding the labels (if any)."""
        atoms = AseAtomsAdaptor.get_atoms(self.structure)
        results: dict[str, Any] = {}
        if self.energy is not None:
            results["energy"] = self.energy
        if self.forces is not None:
            results["forces"] = np.asarray(self.forces)
        if self.stress is not None:
            results["stress"] = np.asarray(self.stress) * units.GPa
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    @classmethod
    def from_atoms(
        cls,
        atoms: Atoms,
        labeler: LabelerInfo,
        *,
        energy: float | None,
        forces: Any,
        stress: Any = None,
        provenance: Provenance | None = None,
        **kwargs: Any,
    ) -> LabeledFrame:
        """Build a labeled frame from ASE atoms and labels (stress in eV/Å³, ASE convention, 3x3 or Voigt)."""
        stress_gpa = None
        if stress is not None:
            s = np.asarray(stress, dtype=float)
            if s.shape == (6,):
                xx, yy, zz, yz, xz, xy = s
                s = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
            stress_gpa = (s.reshape(3, 3) / units.GPa).tolist()
        structure = AseAtomsAdaptor.get_structure(atoms)
        # labels and free-form info travel in the frame's own fields, not in the structure
        structure.properties = {}
        for prop in list(structure.site_properties):
            structure.remove_site_property(prop)
        return cls(
            structure=structure,
            labeler=labeler,
            energy=None if energy is None else float(energy),
            forces=None if forces is None else np.asarray(forces, dtype=float).tolist(),
            stress=stress_gpa,
            provenance=provenance or Provenance(),
            **kwargs,
        )
