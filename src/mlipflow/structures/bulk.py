"""Bulk variants: supercells, strain series, random cell perturbations and atomic rattling."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pymatgen.analysis.elasticity.strain import Deformation
from pymatgen.core import Structure

from mlipflow.data.frames import ISOLATED_ATOM
from mlipflow.errors import StructureError
from mlipflow.structures.provenance import clean_copy, perpendicular_widths, tag
from mlipflow.structures.provenance import min_distance as shortest_distance

_MOD = "mlipflow.structures.bulk"

#: default model cutoff (Å); supercells are at least twice this across every pair of faces
DEFAULT_CUTOFF = 5.0


def supercell_matrix(structure: Structure, min_length: float) -> list[int]:
    """Diagonal repetitions so that every perpendicular cell width is at least ``min_length`` (Å)."""
    widths = perpendicular_widths(structure)
    return [max(1, math.ceil(min_length / w - 1e-9)) for w in widths]


def make_supercell(
    structure: Structure,
    min_length: float | None = None,
    cutoff: float = DEFAULT_CUTOFF,
    max_atoms: int | None = None,
    entry: str = "",
) -> Structure:
    """Repeat a cell until every perpendicular width is at least ``min_length``.

    Parameters
    ----------
    structure
        The parent cell.
    min_length
        Minimum distance between opposite cell faces (Å); default ``2 * cutoff``.
    cutoff
        Model cutoff radius (Å), used for the default ``min_length``.
    max_atoms
        Refuse (``StructureError``) when the supercell would hold more atoms.
    entry
        Name of the calling entry, used in error messages.

    Returns
    -------
    Structure
        The supercell (family ``bulk``).
    """
    min_length = 2.0 * cutoff if min_length is None else min_length
    scale = supercell_matrix(structure, min_length)
    n = len(structure) * int(np.prod(scale))
    if max_atoms is not None and n > max_atoms:
        raise StructureError(
            f"{entry or structure.composition.reduced_formula}: a supercell {scale} with min_length "
            f"{min_length:.1f} Å has {n} atoms > max_atoms {max_atoms}; lower min_length/cutoff or raise max_atoms"
        )
    sc = clean_copy(structure).make_supercell(scale, in_place=False)
    return tag(
        sc,
        "bulk",
        f"{_MOD}.make_supercell",
        {"min_length": min_length, "cutoff": cutoff, "scaling": scale},
        structure,
    )


def _deform(structure: Structure, strain: np.ndarray) -> Structure:
    """Apply a symmetric linear (engineering) strain tensor as the deformation F = I + eps."""
    return Deformation(np.eye(3) + np.asarray(strain)).apply_to_structure(clean_copy(structure))


def strain_series(
    structure: Structure,
    strains: Sequence[float] = (-0.02, -0.01, 0.01, 0.02),
    mode: Literal["isotropic", "axial", "shear"] = "isotropic",
) -> list[Structure]:
    """Cells strained by each value in ``strains``.

    Parameters
    ----------
    structure
        The parent cell.
    strains
        Linear strain values (dimensionless, 0.01 = 1 %).
    mode
        ``isotropic``: the same normal strain along x, y, z (volume change);
        ``axial``: one normal component at a time (xx, yy, zz: anisotropic series);
        ``shear``: one engineering shear component at a time (yz, xz, xy, each symmetric).

    Returns
    -------
    list of Structure
        Family ``strained``; provenance holds the full strain tensor under ``strain``.
    """
    if mode not in ("isotropic", "axial", "shear"):
        raise StructureError(f"unknown strain mode {mode!r}; use isotropic, axial or shear")
    tensors: list[tuple[str, np.ndarray]] = []
    for e in strains:
        if mode == "isotropic":
            tensors.append(("iso", np.eye(3) * e))
        elif mode == "axial":
            for i, lab in enumerate(("xx", "yy", "zz")):
                t = np.zeros((3, 3))
                t[i, i] = e
                tensors.append((lab, t))
        else:
            for (i, j), lab in zip(((1, 2), (0, 2), (0, 1)), ("yz", "xz", "xy"), strict=True):
                t = np.zeros((3, 3))
                t[i, j] = t[j, i] = e / 2.0
                tensors.append((lab, t))
    out = []
    for lab, t in tensors:
        s = _deform(structure, t)
        out.append(
            tag(
                s,
                "strained",
                f"{_MOD}.strain_series",
                {"mode": mode, "component": lab, "value": float(t.max() if t.max() > 0 else t.min())},
                structure,
                strain=t.tolist(),
            )
        )
    return out


def perturb_cells(
    structure: Structure,
    n_structures: int = 5,
    max_strain: float = 0.03,
    seed: int = 0,
) -> list[Structure]:
    """Random cell perturbations: a symmetric strain with components drawn uniformly in ±``max_strain``.

    Parameters
    ----------
    structure
        The parent cell.
    n_structures
        Number of perturbed cells.
    max_strain
        Largest absolute strain component (dimensionless).
    seed
        Seed of ``numpy.random.default_rng``.
    """
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_structures):
        a = rng.uniform(-max_strain, max_strain, size=(3, 3))
        t = (a + a.T) / 2.0
        s = _deform(structure, t)
        out.append(
            tag(
                s,
                "perturbed",
                f"{_MOD}.perturb_cells",
                {"max_strain": max_strain, "seed": seed, "index": k},
                structure,
                strain=t.tolist(),
            )
        )
    return out


def default_min_distance(structure: Structure, fraction: float = 0.75) -> float:
    """Default rattling guard (Å): ``fraction`` of the shortest interatomic distance of the parent."""
    return fraction * shortest_distance(structure)


def _distances_to(structure_frac: np.ndarray, lattice, i: int) -> np.ndarray:
    d = lattice.get_all_distances(structure_frac[i], structure_frac)[0]
    d[i] = np.inf
    return d


def rattle(
    structure: Structure,
    n_structures: int = 5,
    stdev: float = 0.05,
    method: Literal["gaussian", "mc"] = "gaussian",
    min_distance: float | None = None,
    seed: int = 0,
    n_iter: int = 10,
    max_tries: int = 50,
) -> list[Structure]:
    """Displace atoms randomly, never bringing two atoms closer than ``min_distance``.

    Parameters
    ----------
    structure
        The parent cell.
    n_structures
        Number of rattled cells.
    stdev
        Standard deviation (Å) of each Cartesian displacement (per step for ``mc``).
    method
        ``gaussian``: one Gaussian displacement per atom; atoms that violate the
        guard are redrawn (up to ``max_tries`` times, then left where they were).
        ``mc``: Monte Carlo rattle: ``n_iter`` sweeps of single-atom Gaussian trial moves, each accepted only
        if the moved atom keeps every neighbour at least ``min_distance`` away (in the spirit of hiPhive's
        ``mc_rattle``); gives larger, guard-respecting displacements.
    min_distance
        The guard (Å); default 0.75 x the shortest distance in the parent, capped by it.
    seed
        Seed; cell ``k`` draws from ``numpy.random.default_rng([seed, k])``, so series with different seeds
        never repeat each other's cells (``seed + k`` would: seeds 1 and 2 share five of six cells).
    n_iter
        Monte Carlo sweeps.
    max_tries
        Redraws per atom for ``gaussian``.
    """
    if method not in ("gaussian", "mc"):
        raise StructureError(f"unknown rattle method {method!r}; use gaussian or mc")
    guard = default_min_distance(structure) if min_distance is None else float(min_distance)
    parent_min = shortest_distance(structure)
    if guard > parent_min + 1e-6:
        raise StructureError(
            f"rattle guard {guard:.2f} Å exceeds the parent's shortest distance {parent_min:.2f} Å "
            f"({structure.composition.reduced_formula}); lower min_distance"
        )
    lattice = structure.lattice
    out = []
    for k in range(n_structures):
        rng = np.random.default_rng([seed, k])
        cart = structure.cart_coords.copy()
        frac = structure.frac_coords.copy()
        if method == "gaussian":
            disp = rng.normal(0.0, stdev, size=cart.shape)
            new = lattice.get_fractional_coords(cart + disp)
            for i in range(len(structure)):
                trial = frac.copy()
                trial[i] = new[i]
                tries = 0
                while _distances_to(trial, lattice, i).min() < guard and tries < max_tries:
                    trial[i] = lattice.get_fractional_coords(cart[i] + rng.normal(0.0, stdev, 3))
                    tries += 1
                if _distances_to(trial, lattice, i).min() >= guard:
                    frac[i] = trial[i]
        else:
            for _ in range(n_iter):
                for i in rng.permutation(len(structure)):
                    trial = frac.copy()
                    move = lattice.get_cartesian_coords(frac[i]) + rng.normal(0, stdev, 3)
                    trial[i] = lattice.get_fractional_coords(move)
                    if _distances_to(trial, lattice, i).min() >= guard:
                        frac = trial
        s = Structure(lattice, structure.species, frac, site_properties=structure.site_properties or None)
        rms = float(np.sqrt(np.mean(np.sum((s.cart_coords - cart) ** 2, axis=1))))
        out.append(
            tag(
                s,
                "rattled",
                f"{_MOD}.rattle",
                {"stdev": stdev, "method": method, "min_distance": guard, "seed": seed, "index": k, "n_iter": n_iter},
                structure,
                rms_displacement=rms,
            )
        )
    return out


def isolated_atoms(elements: Sequence[str], box: float = 15.0) -> list[Structure]:
    """One atom of each element alone in a cubic box, to be labeled for isolated-atom energies (E0s).

    MACE fits the interaction energy above the sum of isolated-atom energies of the reference method; a
    least-squares guess is ill-posed when the training compositions are collinear (all near Li2O, say).
    Label these with the campaign's own labeler (for DFT with spin polarisation: an isolated O atom is a
    triplet).

    Parameters
    ----------
    elements
        Chemical symbols.
    box
        Edge of the cubic cell (Å); the atom sits at its centre.
    """
    out = []
    for element in dict.fromkeys(elements):
        structure = Structure([[box, 0, 0], [0, box, 0], [0, 0, box]], [element], [[0.5, 0.5, 0.5]])
        out.append(tag(structure, ISOLATED_ATOM, f"{_MOD}.isolated_atoms", {"box": box}, element,
                       config_type="IsolatedAtom"))
    return out
