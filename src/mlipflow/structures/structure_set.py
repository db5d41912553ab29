"""The structure section of a campaign: pydantic models and its expansion into the starting cells.

Example (YAML)::

    max_atoms: 800          # refuse any cell larger than this (the entry is named in the error)
    cutoff: 5.0             # model cutoff (Å): bulk variants start from supercells >= 2 x cutoff wide
    materials:
      Li2O: {prototype: Li2O}                 # a shipped prototype (mlipflow.structures.PROTOTYPES)
      mine: {file: my_cell.cif}               # your own CIF / POSCAR / extxyz (cif:, path:, structure: also work)
      lpscl: {file: average.cif, order: {seed: 0}}   # partial occupancies ordered by the Ewald rule
    entries:
      - {name: li2o-rattle, kind: rattle, material: Li2O, n_structures: 3, stdev: 0.05}
      - {name: li2o-gb, kind: grain_boundary, material: Li2O, rotation_axis: [1, 0, 0], sigmas: [5]}

Relative file paths are read from the folder of the YAML file that holds the section.  Every entry kind maps
onto one Maker of :mod:`mlipflow.structures.jobs` (``entry.maker(...)``): the expansion below and a flow that
uses the Makers directly build the same cells.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pymatgen.core import Structure

from mlipflow.errors import ConfigError, MlipflowError, StructureError
from mlipflow.structures import jobs
from mlipflow.structures.grain_boundaries import TranslationSearch
from mlipflow.structures.prototypes import PROTOTYPES, load_prototype
from mlipflow.structures.provenance import check_element, tag

logger = logging.getLogger(__name__)


class _Model(BaseModel):
    """Strict models: an unknown key is refused with the list of the keys that are allowed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = {}
            for name, f in cls.model_fields.items():
                allowed[name] = name
                alias = f.validation_alias
                for choice in getattr(alias, "choices", []) if alias is not None else []:
                    allowed[str(choice)] = name
            unknown = [k for k in data if k not in allowed]
            if unknown:
                shown = ", ".join(n for n in cls.model_fields if n != "origin")
                raise ValueError(f"unknown key {', '.join(map(repr, unknown))}; allowed keys: {shown}")
        return data


class ExchangeSpec(_Model):
    """Anti-site disorder between two free anions or cations (:func:`~mlipflow.structures.ordering.exchange_sites`),
    e.g. ``{elements: [S, Cl], fraction: 0.25}`` for Li6PS5Cl (the S of PS4 is never exchanged)."""

    elements: tuple[str, str]
    fraction: float = Field(ge=0.0, le=1.0, description="share of the smaller site set exchanged (0: ordered)")


class OrderSpec(_Model):
    """How a structure with partial occupancies becomes an ordered cell (:func:`~mlipflow.structures.ordering.
    order_by_ewald`): whole atoms per site group, lowest Ewald energy of formal charges, seeded."""

    seed: int = Field(0, description="seed of the annealing")
    exchange: ExchangeSpec | None = Field(None, description="disorder two elements first (the disorder level)")
    supercell: tuple[int, int, int] | None = Field(None, description="repeat the cell before ordering")
    oxidation_states: dict[str, float] | None = Field(None, description="formal charges (e); default: guessed")


class MaterialSpec(_Model):
    """A crystal: a shipped prototype, or your own structure file.

    ``file`` (also spelled ``cif``, ``path``, ``structure`` or ``poscar``) is any format pymatgen reads (CIF,
    POSCAR/CONTCAR, extxyz, ...); a relative path is read from the folder of the YAML file.  A file with partial
    occupancies needs ``order`` (e.g. ``order: {seed: 0}``).
    """

    prototype: str | None = Field(None, description=f"one of {', '.join(PROTOTYPES)} (or LLZO, LCO, LPS)")
    file: str | None = Field(None, validation_alias=AliasChoices("file", "cif", "path", "structure", "poscar"),
                             description="your own structure file: CIF, POSCAR, extxyz (aliases cif, path, structure)")
    order: OrderSpec | None = Field(None, description="order partial occupancies by the Ewald rule")
    primitive: bool = Field(False, description="use the primitive cell (e.g. the 96-atom garnet instead of 192)")

    @model_validator(mode="after")
    def _one_source(self) -> MaterialSpec:
        if (self.prototype is None) == (self.file is None):
            raise ValueError("give exactly one of prototype (a shipped crystal) or file (your own CIF/POSCAR/extxyz)")
        return self


class _Entry(_Model):
    name: str
    max_atoms: int | None = Field(None, description="overrides the set's max_atoms for this entry")
    origin: str | None = Field(None, description="file:line of the entry (set by mlipflow's loaders)")

    def inputs(self) -> list[str]:
        """Names of the materials the entry's Maker takes, in order."""
        return [self.material]  # type: ignore[attr-defined]

    def added_elements(self) -> set[str]:
        """Elements the entry brings in beyond its materials (dopants)."""
        return set()


class _BulkEntry(_Entry):
    material: str
    supercell: bool = Field(True, description="start from a supercell >= 2 x cutoff wide")


class SupercellEntry(_BulkEntry):
    kind: Literal["bulk"] = "bulk"
    min_length: float | None = Field(None, description="Å; default 2 x cutoff")

    def maker(self, cutoff: float, limit: int) -> jobs.SupercellMaker:
        return jobs.SupercellMaker(name=self.name, min_length=self.min_length, cutoff=cutoff, max_atoms=limit)


class StrainEntry(_BulkEntry):
    kind: Literal["strain"] = "strain"
    strains: list[float] = Field([-0.02, -0.01, 0.01, 0.02], description="linear strains (0.01 = 1 %)")
    mode: Literal["isotropic", "axial", "shear"] = "isotropic"

    def maker(self, cutoff: float, limit: int) -> jobs.StrainMaker:
        return jobs.StrainMaker(name=self.name, strains=tuple(self.strains), mode=self.mode)


class PerturbEntry(_BulkEntry):
    kind: Literal["perturb"] = "perturb"
    n_structures: int = 3
    max_strain: float = 0.03
    seed: int = 0

    def maker(self, cutoff: float, limit: int) -> jobs.CellPerturbationMaker:
        return jobs.CellPerturbationMaker(name=self.name, n_structures=self.n_structures, max_strain=self.max_strain,
                                          seed=self.seed)


class RattleEntry(_BulkEntry):
    kind: Literal["rattle"] = "rattle"
    n_structures: int = 3
    stdev: float = Field(0.05, description="Å")
    method: Literal["gaussian", "mc"] = "gaussian"
    min_distance: float | None = Field(None, description="Å")
    seed: int = 0

    def maker(self, cutoff: float, limit: int) -> jobs.RattleMaker:
        return jobs.RattleMaker(name=self.name, n_structures=self.n_structures, stdev=self.stdev, method=self.method,
                                min_distance=self.min_distance, seed=self.seed)


class VacancyEntry(_BulkEntry):
    kind: Literal["vacancy"] = "vacancy"
    element: str = "Li"
    target_fraction: float = 0.9
    n_structures: int = 1
    compensation: Literal["none", "anion", "electronic"] = "none"
    anion: str | None = None
    seed: int = 0

    def maker(self, cutoff: float, limit: int) -> jobs.VacancyMaker:
        return jobs.VacancyMaker(name=self.name, element=self.element, target_fraction=self.target_fraction,
                                 n_structures=self.n_structures, compensation=self.compensation, anion=self.anion,
                                 seed=self.seed)


class AntisiteEntry(_BulkEntry):
    kind: Literal["antisite"] = "antisite"
    species: tuple[str, str]
    n_pairs: int = 1
    n_structures: int = 1
    seed: int = 0

    def maker(self, cutoff: float, limit: int) -> jobs.AntisiteMaker:
        return jobs.AntisiteMaker(name=self.name, species_a=self.species[0], species_b=self.species[1],
                                  n_pairs=self.n_pairs, n_structures=self.n_structures, seed=self.seed)


class DopingEntry(_BulkEntry):
    kind: Literal["doping"] = "doping"
    host: str
    dopant: str
    n_dopants: int = 1
    dopant_oxidation: int | None = None
    compensate_with: str | None = "Li"
    n_structures: int = 1
    seed: int = 0

    def maker(self, cutoff: float, limit: int) -> jobs.DopingMaker:
        return jobs.DopingMaker(name=self.name, host=self.host, dopant=self.dopant, n_dopants=self.n_dopants,
                                dopant_oxidation=self.dopant_oxidation, compensate_with=self.compensate_with,
                                n_structures=self.n_structures, seed=self.seed)

    def added_elements(self) -> set[str]:
        return {check_element(self.dopant, self.name).symbol}


class SlabEntry(_Entry):
    kind: Literal["slab"] = "slab"
    material: str
    max_index: int = 1
    miller_indices: list[tuple[int, int, int]] | None = None
    min_slab_size: float = Field(10.0, description="Å")
    min_vacuum_size: float = Field(15.0, description="Å")
    symmetrize: bool = False

    def maker(self, cutoff: float, limit: int) -> jobs.SlabMaker:
        return jobs.SlabMaker(name=self.name, max_index=self.max_index, miller_indices=self.miller_indices,
                              min_slab_size=self.min_slab_size, min_vacuum_size=self.min_vacuum_size,
                              symmetrize=self.symmetrize)


class TranslationSearchSpec(_Model):
    """The rigid-body translation search of a grain boundary (see :mod:`mlipflow.structures.grain_boundaries`)."""

    in_plane_step: float = Field(0.6, gt=0, description="grid spacing of in-plane shifts (Å)")
    expansions: list[float] = Field([0.0, 0.3, 0.6, 1.0], description="spacing changes at both boundaries (Å)")
    rank_by: str = Field("coulomb", description="coulomb (point charges, no model), geometry, or a surrogate "
                                                "calculator name such as chgnet (never above ~130 atoms here)")
    n_keep: int = Field(1, ge=1, description="distinct translations kept per boundary (lowest first)")
    max_evaluations: int = Field(12, ge=1, description="calculator evaluations (best by point-charge energy)")
    relax_steps: int = Field(0, ge=0, description="FIRE steps (positions) with the calculator on the kept cells")

    def search(self) -> TranslationSearch:
        return TranslationSearch(in_plane_step=self.in_plane_step, expansions=tuple(self.expansions),
                                 rank_by=self.rank_by, n_keep=self.n_keep, max_evaluations=self.max_evaluations,
                                 relax_steps=self.relax_steps)


class GrainBoundaryEntry(_Entry):
    kind: Literal["grain_boundary"] = "grain_boundary"
    material: str
    rotation_axis: tuple[int, int, int] = Field((1, 0, 0), description="[uvw], hexagonal setting for R lattices")
    max_sigma: int = 13
    sigmas: list[int] | None = None
    gb_type: Literal["tilt", "twist", "any"] = "tilt"
    plane_cutoff: int = 3
    min_grain_thickness: float = Field(10.0, description="Å per grain")
    overlap_fraction: float = Field(0.8, gt=0, le=1.0,
                                    description="every A-B pair >= this x the bulk's shortest A-B distance")
    min_in_plane: float | None = Field(None, description="repeat in plane to at least this width (Å)")
    translation_search: TranslationSearchSpec = Field(default_factory=TranslationSearchSpec)
    max_candidates: int | None = None

    def maker(self, cutoff: float, limit: int) -> jobs.GrainBoundaryMaker:
        return jobs.GrainBoundaryMaker(
            name=self.name, rotation_axis=self.rotation_axis, max_sigma=self.max_sigma, sigmas=self.sigmas,
            gb_type=self.gb_type, plane_cutoff=self.plane_cutoff, min_grain_thickness=self.min_grain_thickness,
            overlap_fraction=self.overlap_fraction, search=self.translation_search.search(),
            min_in_plane=self.min_in_plane, max_candidates=self.max_candidates)


class InterdiffusionSpec(_Model):
    species: tuple[str, str]  # (from the film, from the substrate)
    n_swaps: int = 1
    max_depth: float = Field(6.0, description="Å")
    n_structures: int = 1
    seed: int = 0


class InterfaceEntry(_Entry):
    kind: Literal["interface"] = "interface"
    film: str
    substrate: str
    film_miller: tuple[int, int, int]
    substrate_miller: tuple[int, int, int]
    max_area: float = Field(150.0, description="Å^2")
    max_strain: float = 0.03
    film_thickness: float = Field(8.0, description="Å")
    substrate_thickness: float = Field(8.0, description="Å")
    gaps: list[float] = Field([2.0], description="Å")
    vacuum_over_film: float | None = Field(None, description="Å; default: equal to the gap (two equal interfaces)")
    max_candidates: int = 1
    terminations: list[int] | None = None
    interdiffusion: InterdiffusionSpec | None = None

    def inputs(self) -> list[str]:
        return [self.film, self.substrate]

    def maker(self, cutoff: float, limit: int) -> jobs.InterfaceMaker:
        d = self.interdiffusion
        inter = None if d is None else jobs.InterdiffusionMaker(
            name=self.name, species_a=d.species[0], species_b=d.species[1], n_swaps=d.n_swaps, max_depth=d.max_depth,
            n_structures=d.n_structures, seed=d.seed)
        return jobs.InterfaceMaker(
            name=self.name, film_miller=self.film_miller, substrate_miller=self.substrate_miller,
            max_area=self.max_area, max_strain=self.max_strain, film_thickness=self.film_thickness,
            substrate_thickness=self.substrate_thickness, gaps=tuple(self.gaps), vacuum_over_film=self.vacuum_over_film,
            max_candidates=self.max_candidates, max_atoms=None, terminations=self.terminations, interdiffusion=inter)


class MeltQuenchSpec(_Model):
    """Melt, quench and relax amorphous starting cells (:func:`~mlipflow.structures.amorphous.melt_quench`)."""

    calculator: str = Field("chgnet", description="chgnet (or another surrogate name), model:<id> for the current "
                                                  "MLIP, mace:<path>; never above ~130 atoms with CHGNet here")
    start: Literal["auto", "random", "crystal"] = Field(
        "auto", description="random packing, crystal supercell, or auto: the crystal when it has molecular anions")
    melt_temperature: float = Field(2000.0, gt=0, description="K")
    final_temperature: float = Field(300.0, gt=0, description="K")
    heat_steps: int = Field(100, ge=0)
    hold_steps: int = Field(400, ge=0)
    quench_steps: int = Field(400, ge=0)
    anneal_steps: int = Field(100, ge=0)
    timestep: float = Field(1.0, gt=0, description="fs")
    relax_steps: int = Field(50, ge=0, description="FIRE steps of the positions after the quench")


class AmorphousEntry(_Entry):
    kind: Literal["amorphous"] = "amorphous"
    material: str
    n_atoms: int = 64
    density_scales: list[float] = [1.0]
    guard_scale: float = 0.7
    seed: int = 0
    melt_quench: MeltQuenchSpec | None = Field(None, description="melt-quench the starts (else random packings)")

    def maker(self, cutoff: float, limit: int) -> jobs.AmorphousMaker:
        return jobs.AmorphousMaker(name=self.name, n_atoms=self.n_atoms, density_scales=tuple(self.density_scales),
                                   guard_scale=self.guard_scale, seed=self.seed,
                                   melt_quench=None if self.melt_quench is None else self.melt_quench.model_dump())


class MixtureEntry(_Entry):
    kind: Literal["mixture"] = "mixture"
    phases: tuple[str, str]
    fractions: list[float] = [0.25, 0.5, 0.75]
    n_atoms: int = 100
    guard_scale: float = 0.7
    seed: int = 0
    melt_quench: MeltQuenchSpec | None = Field(None, description="melt-quench the random packings")

    def inputs(self) -> list[str]:
        return list(self.phases)

    def maker(self, cutoff: float, limit: int) -> jobs.MixtureMaker:
        return jobs.MixtureMaker(name=self.name, fractions=tuple(self.fractions), n_atoms=self.n_atoms,
                                 guard_scale=self.guard_scale, seed=self.seed,
                                 melt_quench=None if self.melt_quench is None else self.melt_quench.model_dump())


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
    """The structure section of a campaign: materials (prototypes or your own files) and the entries that turn
    them into cells (bulk variants, defects, slabs, grain boundaries, interfaces, amorphous cells)."""

    max_atoms: int = Field(800, description="refuse any cell larger than this (the entry is named)")
    cutoff: float = Field(5.0, description="model cutoff (Å): bulk variants start from supercells >= 2 x cutoff")
    materials: dict[str, MaterialSpec] = Field(description="name -> {prototype: NAME} or {file: PATH}")
    entries: list[Entry]

    @field_validator("materials", "entries")
    @classmethod
    def _not_empty(cls, value: Any, info: ValidationInfo) -> Any:
        if not value:
            raise ValueError(f"`{info.field_name}` is empty: a structure section needs at least one")
        return value

    @model_validator(mode="after")
    def _check_references(self) -> StructureSetSpec:
        names = [e.name for e in self.entries]
        dup = [n for n, c in Counter(names).items() if c > 1]
        if dup:
            raise ValueError(f"entry names must be unique; repeated: {', '.join(dup)}")
        for e in self.entries:
            for r in e.inputs():
                if r not in self.materials:
                    raise ValueError(f"entry {e.name!r} refers to material {r!r}, which is not under materials "
                                     f"({', '.join(self.materials) or 'none'})")
        return self


def locate(section: StructureSetSpec, source: str | Path, prefix: tuple = (), lines: dict | None = None
           ) -> StructureSetSpec:
    """Tie a validated section to the YAML file it came from (in place; returns it).

    Relative material files become paths next to ``source``, and every entry's ``origin`` becomes
    ``source:line``, so that an error raised while building the entry names the place to change.  ``prefix`` is
    the key path of the section in the file (``("structures",)`` in a campaign file).
    """
    from mlipflow.yamlio import _line_index

    path = Path(source)
    if lines is None:
        try:
            node = yaml.compose(path.read_text(encoding="utf-8", errors="replace"))
            lines = _line_index(node) if node is not None else {}
        except (OSError, yaml.YAMLError):
            lines = {}
    for m in section.materials.values():
        if m.file and not Path(m.file).is_absolute():
            m.file = str((path.parent / m.file).resolve())
    for i, e in enumerate(section.entries):
        line = lines.get((*prefix, "entries", i))
        e.origin = f"{path}:{line}" if line else str(path)
    return section


def load_spec(spec: StructureSetSpec | dict | str | Path) -> StructureSetSpec:
    """Validate a structure section given as a model, a dict or a YAML file path.

    A YAML file may hold the section at top level or under a ``structures:`` key; its problems are reported as
    ``file:line: key: message``.
    """
    if isinstance(spec, StructureSetSpec):
        return spec
    from mlipflow.yamlio import _line_index, validate_with_lines

    if isinstance(spec, str | Path):
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"structure file {path} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
            node = yaml.compose(text)
            data = yaml.safe_load(text) or {}
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a UTF-8 text file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        lines = _line_index(node) if node is not None else {}
        prefix: tuple = ()
        if isinstance(data, dict) and "structures" in data and "entries" not in data:
            data, prefix = data["structures"], ("structures",)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a structure section (max_atoms, cutoff, materials, entries)")
        shifted = {k[len(prefix):]: v for k, v in lines.items() if k[: len(prefix)] == prefix}
        model = validate_with_lines(data, StructureSetSpec, str(path), shifted)
        return locate(model, path, prefix, lines)
    return validate_with_lines(spec, StructureSetSpec, "structure section", {})


@dataclass
class StructureSet:
    """The expanded set: the cells, counts per family and one table row per cell."""

    structures: list[Structure] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r["family"] for r in self.rows))


def load_material(name: str, m: MaterialSpec) -> Structure:
    """The crystal of a material (a prototype, or a structure file read with pymatgen, ordered if asked)."""
    if m.prototype:
        s = load_prototype(m.prototype)
        if m.order is not None and m.order.exchange is not None:
            s = _ordered(name, s, m.order)
        return _primitive(s) if m.primitive else s
    path = Path(m.file or "")
    if not path.is_file():
        raise StructureError(f"material {name!r}: file {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = Structure.from_file(path)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # pymatgen's parsers raise anything (ValueError, ZeroDivisionError, KeyError...)
        why = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise StructureError(f"material {name!r}: cannot read {path} as a structure ({type(exc).__name__}: {why}); "
                             "give a CIF, POSCAR or extxyz file with a cell and atoms") from None
    if len(s) == 0 or s.volume <= 1e-6 or not np.isfinite(s.frac_coords).all():
        raise StructureError(f"material {name!r}: {path} holds no usable cell (atoms: {len(s)}, volume "
                             f"{s.volume:.3g} Å^3)")
    if not s.is_ordered or (m.order is not None and m.order.exchange is not None):
        if m.order is None:
            raise StructureError(
                f"material {name!r}: {path} has partial occupancies ({s.composition.formula}); add "
                "`order: {seed: 0}` to order them by the Ewald rule (see mlipflow.structures.ordering), or give an "
                "ordered cell")
        s = _ordered(name, s, m.order)
        s.properties["provenance"]["parameters"]["file"] = str(path)
        return _primitive(s) if m.primitive else s
    s = tag(s, "bulk", "file", {"file": str(path)}, str(path), label=f"file {path.name}")
    return _primitive(s) if m.primitive else s


def _ordered(name: str, s: Structure, order: OrderSpec) -> Structure:
    from mlipflow.structures.ordering import exchange_sites, order_by_ewald

    where = f"material {name!r}"
    if order.exchange is not None:
        a, b = order.exchange.elements
        s = exchange_sites(s, a, b, order.exchange.fraction, entry=where)
    ordered = order_by_ewald(s, seed=order.seed, supercell=order.supercell,
                             oxidation_states=order.oxidation_states, entry=where)
    if order.exchange is not None:
        ordered.properties["provenance"]["exchange"] = order.exchange.model_dump()
    return ordered


def _primitive(s: Structure) -> Structure:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    prim = SpacegroupAnalyzer(s, symprec=0.01).find_primitive() or s.copy()
    prim.properties = dict(s.properties)
    prov = dict(prim.properties.get("provenance") or {})
    prov["label"] = f"{prov.get('label', s.composition.reduced_formula)} (primitive, {len(prim)} atoms)"
    prim.properties["provenance"] = prov
    return prim


def _load_materials(model: StructureSetSpec) -> dict[str, Structure]:
    """The materials the entries use; an unreadable one names the first entry using it and its file and line."""
    out = {}
    for entry in model.entries:
        for name in entry.inputs():
            if name in out:
                continue
            try:
                out[name] = load_material(name, model.materials[name])
            except StructureError as exc:
                used = f" (used by entry {entry.name!r} at {entry.origin})" if entry.origin else ""
                raise StructureError(f"{exc}{used}") from None
    return out


def section_elements(section: StructureSetSpec | dict | str | Path) -> set[str]:
    """The chemical elements of a structure section, from its materials (and dopants), building no cell.

    Reads every material an entry uses (a prototype or a structure file: a missing or unreadable file is
    reported here, naming the material).
    """
    model = load_spec(section)
    elements: set[str] = set()
    for s in _load_materials(model).values():
        elements |= {el.symbol for el in s.composition.elements}
    for e in model.entries:
        elements |= e.added_elements()
    return elements


def _strain_value(p: dict[str, Any]) -> float | None:
    if p.get("family") == "strained" and "value" in p.get("parameters", {}):
        return float(p["parameters"]["value"])  # signed: compression < 0
    strain = p.get("max_strain", p.get("von_mises_strain"))
    if strain is None and "strain" in p:
        strain = float(np.abs(np.asarray(p["strain"])).max())
    return None if strain is None else float(strain)


def row(structure: Structure, entry: str = "") -> dict[str, Any]:
    """A table row of a generated cell: entry, family, formula, atoms, Σ, strain (signed for strain series) and a
    short note."""
    p = structure.properties.get("provenance", {})
    strain = _strain_value(p)
    note = p.get("termination") or p.get("plane") or p.get("parameters", {}).get("composition") or ""
    if p.get("charge_neutral") is False or p.get("stoichiometric") is False:
        note = f"{note} net charge {p.get('net_charge')}".strip()
    if p.get("gb_energy_J_m2") is not None:
        note = f"{note} γ {p['gb_energy_J_m2']:.2f} J/m²".strip()
    if p.get("polar"):
        note = f"{note} polar".strip()
    return {
        "entry": entry,
        "family": p.get("family", ""),
        "formula": structure.composition.reduced_formula,
        "atoms": len(structure),
        "sigma": p.get("sigma"),
        "strain": None if strain is None else round(strain, 5),
        "note": str(note),
    }


def expand_entry(entry: Any, materials: dict[str, Structure], cutoff: float, max_atoms: int) -> list[Structure]:
    """Generate the cells of one entry with its Maker (see :class:`StructureSetSpec`)."""
    limit = entry.max_atoms or max_atoms
    inputs = [materials[m] for m in entry.inputs()]
    if getattr(entry, "supercell", False) and not isinstance(entry, SupercellEntry):  # bulk: its own min_length
        inputs = [jobs.SupercellMaker(name=entry.name, cutoff=cutoff, max_atoms=limit).generate(s)[0] for s in inputs]
    return entry.maker(cutoff, limit).generate(*inputs)


def _where(entry: Any) -> str:
    return f"{entry.origin}: " if getattr(entry, "origin", None) else ""


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
        When a cell has more than ``max_atoms`` atoms or a generator fails; the message names the entry and,
        when the section came from a file, its file and line.
    """
    model = load_spec(spec)
    materials = _load_materials(model)
    out = StructureSet()
    for entry in model.entries:
        try:
            cells = expand_entry(entry, materials, model.cutoff, model.max_atoms)
        except MlipflowError as exc:
            msg = str(exc)
            prefix = f"entry {entry.name!r} ({entry.kind})"
            raise type(exc)(f"{_where(entry)}{msg if entry.name in msg else f'{prefix}: {msg}'}") from None
        limit = entry.max_atoms or model.max_atoms
        for s in cells:
            if len(s) > limit:
                raise StructureError(
                    f"{_where(entry)}entry {entry.name!r} ({entry.kind}) makes a {s.composition.reduced_formula} cell "
                    f"of {len(s)} atoms > max_atoms {limit}; shrink it (thickness, area, Σ, n_atoms) or raise max_atoms"
                )
            s.properties["provenance"]["entry"] = entry.name
            out.structures.append(s)
            out.rows.append(row(s, entry.name))
        logger.info("entry %s: %d cells", entry.name, len(cells))
    return out
