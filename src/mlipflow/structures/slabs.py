"""Slabs: every symmetrically distinct termination up to a Miller-index limit (pymatgen ``SlabGenerator``)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from pymatgen.core import Structure
from pymatgen.core.surface import SlabGenerator, get_symmetrically_distinct_miller_indices

from mlipflow.errors import StructureError
from mlipflow.structures.provenance import clean_copy, tag, vacuum_length

_MOD = "mlipflow.structures.slabs"


@dataclass
class SlabCandidate:
    """One slab termination: Miller index, shift, surface species, polarity and size."""

    miller: tuple[int, int, int]
    shift: float
    termination: str
    polar: bool
    symmetric: bool
    stoichiometric: bool
    n_atoms: int
    thickness: float  # Å
    vacuum: float  # Å

    def as_dict(self) -> dict:
        return asdict(self)


def _surface_species(slab: Structure, tol: float = 0.5) -> tuple[str, str]:
    """Species within ``tol`` Å of the top and bottom atomic planes (sorted, joined with '-')."""
    normal = np.cross(slab.lattice.matrix[0], slab.lattice.matrix[1])
    normal /= np.linalg.norm(normal)
    h = slab.cart_coords @ normal
    top = sorted({s.specie.symbol for s, z in zip(slab, h, strict=True) if z > h.max() - tol})
    bottom = sorted({s.specie.symbol for s, z in zip(slab, h, strict=True) if z < h.min() + tol})
    return "-".join(top), "-".join(bottom)


def generate_slabs(
    structure: Structure,
    max_index: int = 1,
    miller_indices: Sequence[Sequence[int]] | None = None,
    min_slab_size: float = 10.0,
    min_vacuum_size: float = 15.0,
    symmetrize: bool = False,
    require_stoichiometric: bool = True,
    max_atoms: int | None = None,
    ftol: float = 0.1,
    entry: str = "",
) -> list[Structure]:
    """Slabs of every distinct termination of every distinct Miller plane up to ``max_index``.

    Parameters
    ----------
    structure
        Bulk cell (a conventional standard cell is used by ``SlabGenerator``'s Miller convention).
    max_index
        Largest Miller index enumerated (ignored when ``miller_indices`` is given).
    miller_indices
        Explicit planes, e.g. ``[[1, 0, 4], [0, 0, 1]]``.
    min_slab_size
        Minimum slab thickness (Å).
    min_vacuum_size
        Minimum vacuum thickness (Å).
    symmetrize
        Ask ``SlabGenerator`` for symmetric slabs.  Beware: for ionic Li compounds this removes atoms and
        leaves non-stoichiometric, charged slabs; those are dropped unless ``require_stoichiometric=False``.
    require_stoichiometric
        Keep only slabs whose reduced composition equals the bulk's.
    max_atoms
        Drop (and log in provenance counts) slabs with more atoms.
    ftol
        Clustering tolerance (Å) of ``SlabGenerator.get_slabs`` for distinct terminations.
    entry
        Name used in error messages.

    Returns
    -------
    list of Structure
        Family ``slab``; provenance holds ``miller``, ``shift``, ``termination`` (top/bottom species),
        ``polar`` (dipole across the slab: flagged, not removed), ``symmetric``, ``vacuum`` and ``thickness``
        (Å).
    """
    bulk = clean_copy(structure)
    with contextlib.suppress(ValueError, KeyError):  # oxidation states let Slab.is_polar() see the dipole
        bulk.add_oxidation_state_by_guess()
    planes = (
        [tuple(int(i) for i in m) for m in miller_indices]
        if miller_indices is not None
        else get_symmetrically_distinct_miller_indices(bulk, max_index)
    )
    out: list[Structure] = []
    for miller in planes:
        if len(miller) != 3 or not any(miller):
            raise StructureError(f"{entry}: Miller index {miller} is not three integers, not all zero")
        gen = SlabGenerator(
            bulk,
            miller,
            min_slab_size=min_slab_size,
            min_vacuum_size=min_vacuum_size,
            center_slab=True,
            primitive=True,
            max_normal_search=max(abs(i) for i in miller),
            reorient_lattice=True,
        )
        for slab in gen.get_slabs(ftol=ftol, symmetrize=symmetrize):
            stoich = slab.composition.reduced_composition == bulk.composition.reduced_composition
            if require_stoichiometric and not stoich:
                continue
            if max_atoms is not None and len(slab) > max_atoms:
                continue
            top, bottom = _surface_species(slab)
            vac = vacuum_length(slab, axis=2)
            normal = np.cross(slab.lattice.matrix[0], slab.lattice.matrix[1])
            width = abs(np.dot(slab.lattice.matrix[2], normal / np.linalg.norm(normal)))
            s = Structure(slab.lattice, [sp.symbol for sp in slab.species], slab.frac_coords)
            out.append(
                tag(
                    s,
                    "slab",
                    f"{_MOD}.generate_slabs",
                    {
                        "miller": list(miller),
                        "min_slab_size": min_slab_size,
                        "min_vacuum_size": min_vacuum_size,
                        "symmetrize": symmetrize,
                    },
                    structure,
                    miller=list(miller),
                    shift=round(float(slab.shift), 5),
                    termination=f"{top}|{bottom}",
                    polar=bool(slab.is_polar()),
                    symmetric=bool(slab.is_symmetric()),
                    stoichiometric=bool(stoich),
                    vacuum=vac,
                    thickness=float(width - vac),
                )
            )
    if not out:
        raise StructureError(
            f"{entry}: no {'stoichiometric ' if require_stoichiometric else ''}slab within the limits for "
            f"{structure.composition.reduced_formula} planes {planes}; try symmetrize=False, more planes, or a "
            "larger max_atoms"
        )
    return out


def slab_candidates(slabs: Sequence[Structure]) -> list[SlabCandidate]:
    """Table rows (:class:`SlabCandidate`) of slabs made by :func:`generate_slabs`."""
    rows = []
    for s in slabs:
        p = s.properties["provenance"]
        rows.append(
            SlabCandidate(
                miller=tuple(p["miller"]),
                shift=p["shift"],
                termination=p["termination"],
                polar=p["polar"],
                symmetric=p["symmetric"],
                stoichiometric=p["stoichiometric"],
                n_atoms=len(s),
                thickness=p["thickness"],
                vacuum=p["vacuum"],
            )
        )
    return rows
