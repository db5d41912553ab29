"""Structure generation: bulk variants, defects, slabs, grain boundaries, interfaces, amorphous cells.

Each generator is a plain function (here) and a jobflow Maker (:mod:`mlipflow.structures.jobs`).  Every
generated structure carries ``structure.properties["provenance"] = {"family", "generator", "parameters",
"parent", ...}``.
"""

from mlipflow.structures.amorphous import amorphous_from_crystal, amorphous_mixture, random_packing
from mlipflow.structures.bulk import make_supercell, perturb_cells, rattle, strain_series
from mlipflow.structures.defects import antisites, interdiffuse, substitute, vacancies
from mlipflow.structures.grain_boundaries import (
    GBCandidate,
    build_gb_candidates,
    build_grain_boundary,
    list_gb_candidates,
    possible_sigmas,
)
from mlipflow.structures.interfaces import InterfaceCandidate, build_interfaces, interface_candidates
from mlipflow.structures.prototypes import PROTOTYPES, list_prototypes, load_prototype
from mlipflow.structures.provenance import FAMILIES, provenance
from mlipflow.structures.slabs import SlabCandidate, generate_slabs, slab_candidates
from mlipflow.structures.structure_set import StructureSet, StructureSetSpec, build_structure_set, load_spec

__all__ = [
    "FAMILIES",
    "PROTOTYPES",
    "GBCandidate",
    "InterfaceCandidate",
    "SlabCandidate",
    "StructureSet",
    "StructureSetSpec",
    "amorphous_from_crystal",
    "amorphous_mixture",
    "antisites",
    "build_gb_candidates",
    "build_grain_boundary",
    "build_interfaces",
    "build_structure_set",
    "generate_slabs",
    "interdiffuse",
    "interface_candidates",
    "list_gb_candidates",
    "list_prototypes",
    "load_prototype",
    "load_spec",
    "make_supercell",
    "perturb_cells",
    "possible_sigmas",
    "provenance",
    "random_packing",
    "rattle",
    "slab_candidates",
    "strain_series",
    "substitute",
    "vacancies",
]
