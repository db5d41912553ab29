"""jobflow Makers of the structure stage: one per generator, and :class:`StructureSetMaker` for a whole section.

One way to build structures: every entry kind of a campaign's structure section maps onto one of these Makers
(:meth:`~mlipflow.structures.structure_set.StructureSetSpec` entries have ``maker()``), and the section's
expansion calls the same ``generate`` that the Maker's job runs.  Each Maker is a dataclass with a ``name`` and
the generator's parameters as fields (units as in the plain functions: Å, K, fs, g/cm^3, degrees), in the style
of atomate2; ``make`` is the ``@job`` and returns a list of Structures with provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobflow import Maker, job
from pymatgen.core import Structure

from mlipflow.structures import amorphous, bulk, defects, grain_boundaries, interfaces, slabs
from mlipflow.structures.schemas import StructureSetDoc


@dataclass
class SupercellMaker(Maker):
    """Supercell at least ``min_length`` Å (default 2 x ``cutoff``) across every pair of faces."""

    name: str = "supercell"
    min_length: float | None = None
    cutoff: float = bulk.DEFAULT_CUTOFF
    max_atoms: int | None = None

    def generate(self, structure: Structure) -> list[Structure]:
        return [bulk.make_supercell(structure, self.min_length, self.cutoff, self.max_atoms, self.name)]

    @job
    def make(self, structure: Structure) -> list[Structure]:
        return self.generate(structure)


@dataclass
class StrainMaker(Maker):
    """Strain series (isotropic, axial or shear), see :func:`~mlipflow.structures.bulk.strain_series`."""

    name: str = "strain"
    strains: tuple[float, ...] = (-0.02, -0.01, 0.01, 0.02)
    mode: str = "isotropic"

    def generate(self, structure: Structure) -> list[Structure]:
        return bulk.strain_series(structure, self.strains, self.mode)  # type: ignore[arg-type]

    @job
    def make(self, structure: Structure) -> list[Structure]:
        return self.generate(structure)


@dataclass
class CellPerturbationMaker(Maker):
    """Random symmetric cell strains, see :func:`~mlipflow.structures.bulk.perturb_cells`."""

    name: str = "perturb"
    n_structures: int = 5
    max_strain: float = 0.03
    seed: int = 0

    def generate(self, structure: Structure) -> list[Structure]:
        return bulk.perturb_cells(structure, self.n_structures, self.max_strain, self.seed)

    @job
    def make(self, structure: Structure) -> list[Structure]:
        return self.generate(structure)


@dataclass
class RattleMaker(Maker):
    """Gaussian or Monte Carlo rattling with a minimum-distance guard, see :func:`~mlipflow.structures.bulk.rattle`."""

    name: str = "rattle"
    n_structures: int = 5
    stdev: float = 0.05
    method: str = "gaussian"
    min_distance: float | None = None
    seed: int = 0

    def generate(self, structure: Structure) -> list[Structure]:
        return bulk.rattle(structure, self.n_structures, self.stdev, self.method, self.min_distance,  # type: ignore[arg-type]
                           self.seed)

    @job
    def make(self, structure: Structure) -> list[Structure]:
        return self.generate(structure)


@dataclass
class VacancyMaker(Maker):
    """Random vacancies at a target fraction, see :func:`~mlipflow.structures.defects.vacancies`."""

    name: str = "vacancy"
    element: str = "Li"
    target_fraction: float = 0.9
    n_structures: int = 1
    compensation: str = "none"
    anion: str | None = None
    seed: int = 0

    def generate(self, structure: Structure) -> list[Structure]:
        return defects.vacancies(structure, self.element, self.target_fraction, self.n_structures,
                                 self.compensation, self.anion, self.seed, self.name)  # type: ignore[arg-type]

    @job
    def make(self, structure: Structure) -> list[Structure]:
        return self.generate(structure)


@dataclass
class AntisiteMaker(Maker):
    """Antisite pairs, see :func:`~mlipflow.structures.defects.antisites`."""

    name: str = "antisite"
    species_a: str = "Li"
    species_b: str = "Co"
    n_pairs: int = 1
    n_structures: int = 1
    seed: int = 0

    def generate(self, structure: Structure) -> list[Structure]:
        return defects.antisites(structure, self.species_a, self.species_b, self.n_pairs, self.n_structures,
                                 self.seed, self.name)

    @job
    def make(self, structure: Structure) -> list[Structure]:
        return self.generate(structure)


@dataclass
class DopingMaker(Maker):
    """Substitutional doping with charge compensation, see :func:`~mlipflow.structures.defects.substitute`."""

    name: str = "doping"
    host: str = "Zr"
    dopant: str = "Ta"
    n_dopants: int = 1
    dopant_oxidation: int | None = None
    compensate_with: str | None = "Li"
    n_structures: int = 1
    seed: int = 0

    def generate(self, structure: Structure) -> list[Structure]:
        return defects.substitute(structure, self.host, self.dopant, self.n_dopants, self.dopant_oxidation,
                                  self.compensate_with, self.n_structures, self.seed, self.name)

    @job
    def make(self, structure: Structure) -> list[Structure]:
        return self.generate(structure)


@dataclass
class InterdiffusionMaker(Maker):
    """Cation swaps across an interface, see :func:`~mlipflow.structures.defects.interdiffuse`."""

    name: str = "interdiffusion"
    species_a: str = "Co"
    species_b: str = "Li"
    n_swaps: int = 1
    max_depth: float = 6.0
    n_structures: int = 1
    seed: int = 0

    def generate(self, interface: Structure) -> list[Structure]:
        return defects.interdiffuse(interface, self.species_a, self.species_b, self.n_swaps, self.max_depth,
                                    self.n_structures, self.seed, self.name)

    @job
    def make(self, interface: Structure) -> list[Structure]:
        return self.generate(interface)


@dataclass
class SlabMaker(Maker):
    """All distinct terminations up to a Miller index, see :func:`~mlipflow.structures.slabs.generate_slabs`."""

    name: str = "slab"
    max_index: int = 1
    miller_indices: list[tuple[int, int, int]] | None = None
    min_slab_size: float = 10.0
    min_vacuum_size: float = 15.0
    symmetrize: bool = False
    max_atoms: int | None = None

    def generate(self, structure: Structure) -> list[Structure]:
        return slabs.generate_slabs(structure, self.max_index, self.miller_indices, self.min_slab_size,
                                    self.min_vacuum_size, self.symmetrize, max_atoms=self.max_atoms, entry=self.name)

    @job
    def make(self, structure: Structure) -> list[Structure]:
        return self.generate(structure)


@dataclass
class GrainBoundaryMaker(Maker):
    """CSL Σ boundaries about one axis with a rigid-body translation search, see
    :mod:`mlipflow.structures.grain_boundaries` (Å, degrees)."""

    name: str = "grain_boundary"
    rotation_axis: tuple[int, int, int] = (1, 0, 0)
    max_sigma: int = 13
    sigmas: list[int] | None = None
    gb_type: str = "tilt"
    plane_cutoff: int = 3
    min_grain_thickness: float = 10.0
    overlap_fraction: float = 0.8
    search: grain_boundaries.TranslationSearch = field(default_factory=grain_boundaries.TranslationSearch)
    min_in_plane: float | None = None
    max_atoms: int | None = None
    max_candidates: int | None = None

    def generate(self, structure: Structure) -> list[Structure]:
        cands = grain_boundaries.list_gb_candidates(structure, self.rotation_axis, self.max_sigma, self.sigmas,
                                                    self.gb_type, self.plane_cutoff, entry=self.name)  # type: ignore[arg-type]
        if self.max_candidates is not None:
            cands = cands[: self.max_candidates]
        return grain_boundaries.build_gb_candidates(structure, cands, self.min_grain_thickness,
                                                    self.overlap_fraction, self.search, self.min_in_plane,
                                                    self.max_atoms, self.name)

    @job
    def make(self, structure: Structure) -> list[Structure]:
        return self.generate(structure)


@dataclass
class InterfaceMaker(Maker):
    """Coherent film|substrate interfaces (ZSL), see :func:`~mlipflow.structures.interfaces.build_interfaces`."""

    name: str = "interface"
    film_miller: tuple[int, int, int] = (0, 0, 1)
    substrate_miller: tuple[int, int, int] = (1, 1, 1)
    max_area: float = 150.0
    max_strain: float = 0.03
    film_thickness: float = 8.0
    substrate_thickness: float = 8.0
    gaps: tuple[float, ...] = (2.0,)
    vacuum_over_film: float | None = None
    max_candidates: int = 1
    max_atoms: int | None = 800
    terminations: list[int] | None = None
    interdiffusion: InterdiffusionMaker | None = None

    def generate(self, film: Structure, substrate: Structure) -> list[Structure]:
        cells = interfaces.build_interfaces(
            film, substrate, self.film_miller, self.substrate_miller, max_area=self.max_area,
            max_strain=self.max_strain, film_thickness=self.film_thickness,
            substrate_thickness=self.substrate_thickness, gaps=self.gaps, vacuum_over_film=self.vacuum_over_film,
            max_candidates=self.max_candidates, max_atoms=self.max_atoms, terminations=self.terminations,
            entry=self.name)
        if self.interdiffusion is not None:
            cells += self.interdiffusion.generate(cells[0])
        return cells

    @job
    def make(self, film: Structure, substrate: Structure) -> list[Structure]:
        return self.generate(film, substrate)


@dataclass
class AmorphousMaker(Maker):
    """Amorphous cells at (fractions of) the crystal density, see :mod:`mlipflow.structures.amorphous`.

    Without ``melt_quench`` the cells are random packings (a starting point only: they are far from any minimum);
    with it (keyword arguments of :func:`~mlipflow.structures.amorphous.melt_quench` plus ``start``: ``random``,
    ``crystal`` or ``auto`` = the crystal when it holds molecular anions) each start is melted, quenched and
    relaxed with the given calculator.
    """

    name: str = "amorphous"
    n_atoms: int = 64
    density_scales: tuple[float, ...] = (1.0,)
    guard_scale: float = 0.7
    seed: int = 0
    melt_quench: dict[str, Any] | None = None

    def generate(self, crystal: Structure) -> list[Structure]:
        mq = dict(self.melt_quench or {})
        start = mq.pop("start", "auto")
        if start == "auto":
            from mlipflow.structures.bonds import molecular_bonds

            start = "crystal" if molecular_bonds(crystal) else "random"
        out = []
        for i, d in enumerate(self.density_scales):
            if self.melt_quench is not None and start == "crystal":
                s = amorphous.crystal_start(crystal, self.n_atoms, d, entry=self.name)
            else:
                s = amorphous.amorphous_from_crystal(crystal, self.n_atoms, density_scale=d,
                                                     guard_scale=self.guard_scale, seed=self.seed + i,
                                                     entry=self.name)
            if self.melt_quench is not None:
                s = amorphous.melt_quench(s, seed=self.seed + i, entry=self.name, **mq)
            out.append(s)
        return out

    @job
    def make(self, crystal: Structure) -> list[Structure]:
        return self.generate(crystal)


@dataclass
class MixtureMaker(Maker):
    """Amorphous two-phase mixtures at several stoichiometries, optionally melt-quenched (``melt_quench`` as for
    :class:`AmorphousMaker`; mixtures always start from a random packing).

    See :func:`~mlipflow.structures.amorphous.amorphous_mixture`.
    """

    name: str = "mixture"
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75)
    n_atoms: int = 100
    guard_scale: float = 0.7
    seed: int = 0
    melt_quench: dict[str, Any] | None = None

    def generate(self, phase_a: Structure, phase_b: Structure) -> list[Structure]:
        cells = amorphous.amorphous_mixture(phase_a, phase_b, self.fractions, self.n_atoms, self.guard_scale,
                                            self.seed, self.name)
        if self.melt_quench is None:
            return cells
        mq = {k: v for k, v in self.melt_quench.items() if k != "start"}
        return [amorphous.melt_quench(s, seed=self.seed + k, entry=self.name, **mq) for k, s in enumerate(cells)]

    @job
    def make(self, phase_a: Structure, phase_b: Structure) -> list[Structure]:
        return self.generate(phase_a, phase_b)


@dataclass
class StructureSetMaker(Maker):
    """Expand a campaign's structure section into all starting cells.

    The job's output is a :class:`~mlipflow.structures.schemas.StructureSetDoc`: ``structures`` (with
    provenance), ``counts`` (cells per family) and ``rows`` (the preview table).  Cells larger than the
    section's ``max_atoms`` are refused with a ``StructureError`` naming the entry.
    """

    name: str = "structure_set"
    spec: dict[str, Any] | None = field(default=None)

    @job(output_schema=StructureSetDoc)
    def make(self, spec: dict[str, Any] | str | Path | None = None) -> StructureSetDoc:
        from mlipflow.structures.structure_set import StructureSetSpec, build_structure_set

        section = spec if spec is not None else self.spec
        if section is None:
            from mlipflow.errors import ConfigError

            raise ConfigError("StructureSetMaker needs a structure section (spec=...)")
        if isinstance(section, StructureSetSpec):
            section = section.model_dump()
        result = build_structure_set(section)
        return StructureSetDoc(structures=result.structures, counts=result.counts, rows=result.rows)
