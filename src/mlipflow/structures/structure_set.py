"""The structure section of a campaign: pydantic models and its expansion into the starting cells.

Example (YAML)::

    max_atoms: 800          # refuse any cell larger than this (the entry is named in the error)
    cutoff: 5.0             # model cutoff (Å): bulk variants start from supercells >= 2 x cutoff wide
    materials:
      Li2O: {prototype: Li2O}
      mine: {file: my_cell.cif}
    entries:
      - {name: li2o-rattle, kind: rattle, material: Li2O, n_structures: 3, stdev: 0.05}
      - {name: li2o-gb, kind: grain_boundary, material: Li2O, rotation_axis: [1, 0, 0], sigmas: [5]}
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pymatgen.core import Structure

from mlipflow.errors import ConfigError, StructureError
from mlipflow.structures import amorphous, bulk, defects, grain_boundaries, interfaces, slabs
from mlipflow.structures.prototypes import load_prototype
from mlipflow.structures.provenance import tag

logger = logging.getLogger(__name__)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MaterialSpec(_Model):
    """A crystal: a shipped prototype name or a structure file (CIF, POSCAR, extxyz...)."""

    prototype: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> MaterialSpec:
        if (self.prototype is None) == (self.file is None):
            raise ValueError("give exactly one of prototype or file")
        return self


class _Entry(_Model):
    name: str
    max_atoms: int | None = Field(None, description="overrides the set's max_atoms for this entry")


class _BulkEntry(_Entry):
    material: str
    supercell: bool = Field(True, description="start from a supercell >= 2 x cutoff wide")


class SupercellEntry(_BulkEntry):
    kind: Literal["bulk"] = "bulk"
    min_length: float | None = None  # Å


class StrainEntry(_BulkEntry):
    kind: Literal["strain"] = "strain"
    strains: list[float] = [-0.02, -0.01, 0.01, 0.02]
    mode: Literal["isotropic", "axial", "shear"] = "isotropic"


class PerturbEntry(_BulkEntry):
    kind: Literal["perturb"] = "perturb"
    n_structures: int = 3
    max_strain: float = 0.03
    seed: int = 0


class RattleEntry(_BulkEntry):
    kind: Literal["rattle"] = "rattle"
    n_structures: int = 3
    stdev: float = 0.05  # Å
    method: Literal["gaussian", "mc"] = "gaussian"
    min_distance: float | None = None  # Å
    seed: int = 0


class VacancyEntry(_BulkEntry):
    kind: Literal["vacancy"] = "vacancy"
    element: str = "Li"
    target_fraction: float = 0.9
    n_structures: int = 1
    compensation: Literal["none", "anion", "electronic"] = "none"
    anion: str | None = None
    seed: int = 0


class AntisiteEntry(_BulkEntry):
    kind: Literal["antisite"] = "antisite"
    species: tuple[str, str]
    n_pairs: int = 1
    n_structures: int = 1
    seed: int = 0


class DopingEntry(_BulkEntry):
    kind: Literal["doping"] = "doping"
    host: str
    dopant: str
    n_dopants: int = 1
    dopant_oxidation: int | None = None
    compensate_with: str | None = "Li"
    n_structures: int = 1
    seed: int = 0


class SlabEntry(_Entry):
    kind: Literal["slab"] = "slab"
    material: str
    max_index: int = 1
    miller_indices: list[tuple[int, int, int]] | None = None
    min_slab_size: float = 10.0  # Å
    min_vacuum_size: float = 15.0  # Å
    symmetrize: bool = False


class GrainBoundaryEntry(_Entry):
    kind: Literal["grain_boundary"] = "grain_boundary"
    material: str
    rotation_axis: tuple[int, int, int] = (1, 0, 0)
    max_sigma: int = 13
    sigmas: list[int] | None = None
    gb_type: Literal["tilt", "twist", "any"] = "tilt"
    plane_cutoff: int = 3
    min_grain_thickness: float = 10.0  # Å
    rm_ratio: float = 0.7
    max_candidates: int | None = None


class InterdiffusionSpec(_Model):
    species: tuple[str, str]  # (from the film, from the substrate)
    n_swaps: int = 1
    max_depth: float = 6.0  # Å
    n_structures: int = 1
    seed: int = 0


class InterfaceEntry(_Entry):
    kind: Literal["interface"] = "interface"
    film: str
    substrate: str
    film_miller: tuple[int, int, int]
    substrate_miller: tuple[int, int, int]
    max_area: float = 150.0  # Å^2
    max_strain: float = 0.03
    film_thickness: float = 8.0  # Å
    substrate_thickness: float = 8.0  # Å
    gaps: list[float] = [2.0]  # Å
    vacuum_over_film: float | None = None  # Å; default: equal to the gap (two equal interfaces)
    max_candidates: int = 1
    terminations: list[int] | None = None
    interdiffusion: InterdiffusionSpec | None = None


class AmorphousEntry(_Entry):
    kind: Literal["amorphous"] = "amorphous"
    material: str
    n_atoms: int = 64
    density_scales: list[float] = [1.0]
    guard_scale: float = 0.7
    seed: int = 0


class MixtureEntry(_Entry):
    kind: Literal["mixture"] = "mixture"
    phases: tuple[str, str]
    fractions: list[float] = [0.25, 0.5, 0.75]
    n_atoms: int = 100
    guard_scale: float = 0.7
    seed: int = 0


Entry = Annotated[
    SupercellEntry
    | StrainEntry
    | PerturbEntry
    | RattleEntry
    | VacancyEntry
    | AntisiteEntry
    | DopingEntry
    | SlabEntry
    | GrainBoundaryEntry
    | InterfaceEntry
    | AmorphousEntry
    | MixtureEntry,
    Field(discriminator="kind"),
]


class StructureSetSpec(_Model):
    """The structure section of a campaign."""

    max_atoms: int = 800
    cutoff: float = 5.0  # Å
    materials: dict[str, MaterialSpec]
    entries: list[Entry]

    @model_validator(mode="after")
    def _check_references(self) -> StructureSetSpec:
        names = [e.name for e in self.entries]
        dup = [n for n, c in Counter(names).items() if c > 1]
        if dup:
            raise ValueError(f"entry names must be unique; repeated: {', '.join(dup)}")
        for e in self.entries:
            refs = [getattr(e, k) for k in ("material", "film", "substrate") if hasattr(e, k)]
            refs += list(getattr(e, "phases", ()))
            for r in refs:
                if r not in self.materials:
                    raise ValueError(f"entry {e.name!r} refers to material {r!r}, which is not under materials")
        return self


def load_spec(spec: StructureSetSpec | dict | str | Path) -> StructureSetSpec:
    """Validate a structure section given as a model, a dict or a YAML file path.

    A YAML file may hold the section at top level or under a ``structures:`` key.
    """
    if isinstance(spec, StructureSetSpec):
        return spec
    base = None
    if isinstance(spec, str | Path):
        path = Path(spec)
        if not path.exists():
            raise ConfigError(f"structure file {path} does not exist")
        base = path.parent
        spec = yaml.safe_load(path.read_text()) or {}
        if "structures" in spec and "entries" not in spec:
            spec = spec["structures"]
    try:
        model = StructureSetSpec.model_validate(spec)
    except ValidationError as exc:
        raise ConfigError(f"invalid structure section:\n{exc}") from None
    if base is not None:
        for m in model.materials.values():
            if m.file and not Path(m.file).is_absolute():
                m.file = str(base / m.file)
    return model


@dataclass
class StructureSet:
    """The expanded set: the cells, counts per family and one table row per cell."""

    structures: list[Structure] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r["family"] for r in self.rows))


def _load_material(name: str, m: MaterialSpec) -> Structure:
    if m.prototype:
        return load_prototype(m.prototype)
    path = Path(m.file or "")
    if not path.exists():
        raise StructureError(f"material {name!r}: file {path} does not exist")
    s = Structure.from_file(path)
    return tag(s, "bulk", "file", {"file": str(path)}, str(path), label=f"file {path.name}")


def row(structure: Structure, entry: str = "") -> dict[str, Any]:
    """A table row of a generated cell: entry, family, formula, atoms, Σ, strain and a short note."""
    p = structure.properties.get("provenance", {})
    strain = p.get("max_strain", p.get("von_mises_strain"))
    if strain is None and "strain" in p:
        import numpy as np

        strain = float(np.abs(np.asarray(p["strain"])).max())
    note = p.get("termination") or p.get("plane") or p.get("parameters", {}).get("composition") or ""
    if p.get("charge_neutral") is False or p.get("stoichiometric") is False:
        note = f"{note} net charge {p.get('net_charge')}".strip()
    if p.get("polar"):
        note = f"{note} polar".strip()
    return {
        "entry": entry,
        "family": p.get("family", ""),
        "formula": structure.composition.reduced_formula,
        "atoms": len(structure),
        "sigma": p.get("sigma"),
        "strain": None if strain is None else round(float(strain), 5),
        "note": str(note),
    }


def expand_entry(entry: Any, materials: dict[str, Structure], cutoff: float, max_atoms: int) -> list[Structure]:
    """Generate the cells of one entry (see :class:`StructureSetSpec`)."""
    n = entry.name
    limit = entry.max_atoms or max_atoms

    def base(material: str) -> Structure:
        s = materials[material]
        if getattr(entry, "supercell", False):
            return bulk.make_supercell(s, cutoff=cutoff, max_atoms=limit, entry=n)
        return s

    k = entry.kind
    if k == "bulk":
        return [bulk.make_supercell(materials[entry.material], entry.min_length, cutoff, limit, n)]
    if k == "strain":
        return bulk.strain_series(base(entry.material), entry.strains, entry.mode)
    if k == "perturb":
        return bulk.perturb_cells(base(entry.material), entry.n_structures, entry.max_strain, entry.seed)
    if k == "rattle":
        return bulk.rattle(
            base(entry.material), entry.n_structures, entry.stdev, entry.method, entry.min_distance, entry.seed
        )
    if k == "vacancy":
        return defects.vacancies(
            base(entry.material),
            entry.element,
            entry.target_fraction,
            entry.n_structures,
            entry.compensation,
            entry.anion,
            entry.seed,
            n,
        )
    if k == "antisite":
        a, b = entry.species
        return defects.antisites(base(entry.material), a, b, entry.n_pairs, entry.n_structures, entry.seed, n)
    if k == "doping":
        return defects.substitute(
            base(entry.material),
            entry.host,
            entry.dopant,
            entry.n_dopants,
            entry.dopant_oxidation,
            entry.compensate_with,
            entry.n_structures,
            entry.seed,
            n,
        )
    if k == "slab":
        return slabs.generate_slabs(
            materials[entry.material],
            entry.max_index,
            entry.miller_indices,
            entry.min_slab_size,
            entry.min_vacuum_size,
            entry.symmetrize,
            entry=n,
        )
    if k == "grain_boundary":
        cands = grain_boundaries.list_gb_candidates(
            materials[entry.material],
            entry.rotation_axis,
            entry.max_sigma,
            entry.sigmas,
            entry.gb_type,
            entry.plane_cutoff,
            entry=n,
        )
        if entry.max_candidates is not None:
            cands = cands[: entry.max_candidates]
        return grain_boundaries.build_gb_candidates(
            materials[entry.material], cands, entry.min_grain_thickness, entry.rm_ratio, entry=n
        )
    if k == "interface":
        cells = interfaces.build_interfaces(
            materials[entry.film],
            materials[entry.substrate],
            entry.film_miller,
            entry.substrate_miller,
            max_area=entry.max_area,
            max_strain=entry.max_strain,
            film_thickness=entry.film_thickness,
            substrate_thickness=entry.substrate_thickness,
            gaps=entry.gaps,
            vacuum_over_film=entry.vacuum_over_film,
            max_candidates=entry.max_candidates,
            max_atoms=None,
            terminations=entry.terminations,
            entry=n,
        )
        if entry.interdiffusion:
            d = entry.interdiffusion
            cells += defects.interdiffuse(
                cells[0], d.species[0], d.species[1], d.n_swaps, d.max_depth, d.n_structures, d.seed, n
            )
        return cells
    if k == "amorphous":
        return [
            amorphous.amorphous_from_crystal(
                materials[entry.material],
                n_atoms=entry.n_atoms,
                density_scale=scale,
                guard_scale=entry.guard_scale,
                seed=entry.seed + i,
                entry=n,
            )
            for i, scale in enumerate(entry.density_scales)
        ]
    if k == "mixture":
        a, b = entry.phases
        return amorphous.amorphous_mixture(
            materials[a], materials[b], entry.fractions, entry.n_atoms, entry.guard_scale, entry.seed, n
        )
    raise ConfigError(f"entry {n!r}: unknown kind {k!r}")  # pragma: no cover - pydantic rejects it first


def build_structure_set(spec: StructureSetSpec | dict | str | Path) -> StructureSet:
    """Expand a structure section into every starting cell.

    Parameters
    ----------
    spec
        The section (model, dict or YAML path; see :class:`StructureSetSpec`).

    Returns
    -------
    StructureSet
        Cells (each with ``properties["provenance"]``, plus ``entry`` naming the entry), counts per family and
        table rows.

    Raises
    ------
    StructureError
        When a cell has more than ``max_atoms`` atoms (the entry is named) or a generator fails.
    """
    model = load_spec(spec)
    materials = {name: _load_material(name, m) for name, m in model.materials.items()}
    out = StructureSet()
    for entry in model.entries:
        cells = expand_entry(entry, materials, model.cutoff, model.max_atoms)
        limit = entry.max_atoms or model.max_atoms
        for s in cells:
            if len(s) > limit:
                raise StructureError(
                    f"entry {entry.name!r} ({entry.kind}) makes a {s.composition.reduced_formula} cell of {len(s)} "
                    f"atoms > max_atoms {limit}; shrink it (thickness, area, Σ, n_atoms) or raise max_atoms"
                )
            s.properties["provenance"]["entry"] = entry.name
            out.structures.append(s)
            out.rows.append(row(s, entry.name))
        logger.info("entry %s: %d cells", entry.name, len(cells))
    return out
