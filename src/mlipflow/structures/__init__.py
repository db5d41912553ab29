"""Structure generation: bulk variants, defects, slabs, grain boundaries, interfaces, amorphous cells.

Each generator is a plain function (here) and a jobflow Maker (:mod:`mlipflow.structures.jobs`); the entries of
a campaign's structure section map onto those Makers.  Every
generated structure carries ``structure.properties["provenance"] = {"family", "generator", "parameters",
"parent", ...}``.

Names are loaded on first use (see ``mlipflow._lazy``).
"""

from __future__ import annotations

from mlipflow._lazy import lazy_exports

_EXPORTS = {
    "amorphous_from_crystal": "mlipflow.structures.amorphous",
    "amorphous_mixture": "mlipflow.structures.amorphous",
    "crystal_start": "mlipflow.structures.amorphous",
    "melt_quench": "mlipflow.structures.amorphous",
    "random_packing": "mlipflow.structures.amorphous",
    "make_supercell": "mlipflow.structures.bulk",
    "perturb_cells": "mlipflow.structures.bulk",
    "rattle": "mlipflow.structures.bulk",
    "strain_series": "mlipflow.structures.bulk",
    "antisites": "mlipflow.structures.defects",
    "interdiffuse": "mlipflow.structures.defects",
    "substitute": "mlipflow.structures.defects",
    "vacancies": "mlipflow.structures.defects",
    "GBCandidate": "mlipflow.structures.grain_boundaries",
    "build_gb_candidates": "mlipflow.structures.grain_boundaries",
    "build_grain_boundary": "mlipflow.structures.grain_boundaries",
    "grain_boundary_translations": "mlipflow.structures.grain_boundaries",
    "TranslationSearch": "mlipflow.structures.grain_boundaries",
    "exchange_sites": "mlipflow.structures.ordering",
    "order_by_ewald": "mlipflow.structures.ordering",
    "list_gb_candidates": "mlipflow.structures.grain_boundaries",
    "possible_sigmas": "mlipflow.structures.grain_boundaries",
    "InterfaceCandidate": "mlipflow.structures.interfaces",
    "build_interfaces": "mlipflow.structures.interfaces",
    "interface_candidates": "mlipflow.structures.interfaces",
    "PROTOTYPES": "mlipflow.structures.prototypes",
    "list_prototypes": "mlipflow.structures.prototypes",
    "load_prototype": "mlipflow.structures.prototypes",
    "FAMILIES": "mlipflow.structures.provenance",
    "provenance": "mlipflow.structures.provenance",
    "SlabCandidate": "mlipflow.structures.slabs",
    "generate_slabs": "mlipflow.structures.slabs",
    "slab_candidates": "mlipflow.structures.slabs",
    "StructureSet": "mlipflow.structures.structure_set",
    "StructureSetSpec": "mlipflow.structures.structure_set",
    "build_structure_set": "mlipflow.structures.structure_set",
    "load_spec": "mlipflow.structures.structure_set",
    "section_elements": "mlipflow.structures.structure_set",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
