"""Surface, grain-boundary and interface energies with their stated definitions (V19–V21).

Units: energies eV, areas Å², results J/m² (1 eV/Å² = 16.0218 J/m²).

Definitions
-----------
Surface energy (slab with two equivalent free surfaces, vacuum along the normal)
    γ_s = (E_slab - Σ_el n_el μ_el) / (2 A).  For a slab whose composition is a whole multiple k of the bulk's,
    Σ n μ = k · E_bulk (the bulk cell's energy); otherwise chemical potentials μ_el (eV/atom) must be given.
Grain-boundary energy (periodic bicrystal holding ``n_boundaries`` boundaries, usually 2)
    γ_GB = (E_GB - Σ n μ) / (n_boundaries · A), the reference again the bulk of the same composition.
Work of adhesion (slabs A and B in the same in-plane cell, one A|B interface plus vacuum)
    W_ad = (E_A + E_B - E_AB) / (n_interfaces · A); positive = the interface binds.
Interface formation energy (A|B cell, periodic, ``n_interfaces`` interfaces)
    γ_int = (E_AB - Σ n μ) / (n_interfaces · A), with μ from the bulk of A and of B (given as bulk cells).

A is the area of the plane spanned by the two in-plane cell vectors (the cell vectors other than ``axis``).
"""

# Names carry their unit as in ASE's ``temperature_K`` (``D_cm2_s``, ``Ea_eV``): keep the capitals.
# ruff: noqa: N815

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import BaseModel

from mlipflow.errors import DataError

EV_PER_A2_TO_J_PER_M2 = 16.021766208


def interface_area(atoms: Atoms, axis: int = 2) -> float:
    """Area (Å²) of the plane spanned by the two cell vectors other than ``axis``."""
    a, b = (atoms.cell[i] for i in range(3) if i != axis)
    return float(np.linalg.norm(np.cross(a, b)))


def reference_energy(
    composition: Counter | dict[str, int], *, bulk: Sequence[tuple[dict[str, int], float]] = (),
    mu: dict[str, float] | None = None,
) -> float:
    """Σ n_el μ_el (eV) for ``composition`` from chemical potentials or from bulk cells.

    Parameters
    ----------
    composition
        Element -> count of the slab/bicrystal/interface cell.
    bulk
        (bulk composition, bulk cell energy in eV) pairs; the composition must be a non-negative integer
        combination of them (solved by least squares and checked).
    mu
        Element -> chemical potential (eV/atom); used when given.
    """
    comp = {k: int(v) for k, v in dict(composition).items()}
    if mu is not None:
        missing = set(comp) - set(mu)
        if missing:
            raise DataError(f"chemical potentials missing for {sorted(missing)}")
        return float(sum(n * mu[el] for el, n in comp.items()))
    if not bulk:
        raise DataError("give bulk reference cells or chemical potentials mu")
    elements = sorted(set(comp).union(*(b[0] for b in bulk)))
    a = np.array([[b[0].get(el, 0) for b in bulk] for el in elements], float)
    y = np.array([comp.get(el, 0) for el in elements], float)
    k, *_ = np.linalg.lstsq(a, y, rcond=None)
    if not np.allclose(a @ k, y, atol=1e-6) or np.any(k < -1e-9):
        raise DataError(
            f"composition {comp} is not a combination of the bulk references "
            f"{[b[0] for b in bulk]}: the cell is off-stoichiometric, give chemical potentials mu (eV/atom)"
        )
    return float(sum(ki * b[1] for ki, b in zip(k, bulk, strict=True)))


class EnergeticsResult(BaseModel):
    """One interface-type energy.

    Parameters
    ----------
    kind
        ``surface``, ``grain_boundary``, ``adhesion`` or ``interface_formation``.
    value_J_m2
        The energy (J/m²).
    area_A2
        Interface area (Å²).
    n_interfaces
        Interfaces (or free surfaces) in the cell.
    definition
        The formula used, in words.
    energies_eV
        The total energies that entered.
    """

    kind: str
    value_J_m2: float
    area_A2: float
    n_interfaces: int
    definition: str
    energies_eV: dict[str, float]


def _composition(atoms: Atoms) -> Counter:
    return Counter(atoms.get_chemical_symbols())


def _energy(atoms: Atoms, calculator: Calculator) -> float:
    work = atoms.copy()
    work.calc = calculator
    return float(work.get_potential_energy())


def surface_energy(
    slab: Atoms, bulk: Atoms, calculator: Calculator, *, axis: int = 2, n_surfaces: int = 2,
    mu: dict[str, float] | None = None,
) -> EnergeticsResult:
    """Surface energy γ_s (J/m²) of ``slab`` against ``bulk`` (both evaluated with ``calculator``, unrelaxed)."""
    e_slab, e_bulk = _energy(slab, calculator), _energy(bulk, calculator)
    ref = reference_energy(_composition(slab), bulk=[(dict(_composition(bulk)), e_bulk)], mu=mu)
    area = interface_area(slab, axis)
    return EnergeticsResult(
        kind="surface", value_J_m2=(e_slab - ref) / (n_surfaces * area) * EV_PER_A2_TO_J_PER_M2, area_A2=area,
        n_interfaces=n_surfaces, definition="(E_slab - sum n mu) / (n_surfaces A)",
        energies_eV={"slab": e_slab, "bulk": e_bulk, "reference": ref},
    )


def grain_boundary_energy(
    bicrystal: Atoms, bulk: Atoms, calculator: Calculator, *, axis: int = 2, n_boundaries: int = 2,
    mu: dict[str, float] | None = None,
) -> EnergeticsResult:
    """GB energy γ_GB (J/m²) of a periodic bicrystal against the bulk of the same composition."""
    e_gb, e_bulk = _energy(bicrystal, calculator), _energy(bulk, calculator)
    ref = reference_energy(_composition(bicrystal), bulk=[(dict(_composition(bulk)), e_bulk)], mu=mu)
    area = interface_area(bicrystal, axis)
    return EnergeticsResult(
        kind="grain_boundary", value_J_m2=(e_gb - ref) / (n_boundaries * area) * EV_PER_A2_TO_J_PER_M2, area_A2=area,
        n_interfaces=n_boundaries, definition="(E_GB - sum n mu) / (n_boundaries A)",
        energies_eV={"bicrystal": e_gb, "bulk": e_bulk, "reference": ref},
    )


def work_of_adhesion(
    interface: Atoms, slab_a: Atoms, slab_b: Atoms, calculator: Calculator, *, axis: int = 2, n_interfaces: int = 1
) -> EnergeticsResult:
    """W_ad = (E_A + E_B - E_AB) / (n_interfaces A) in J/m² (slabs cut from the interface cell, same in-plane cell)."""
    e_ab, e_a, e_b = (_energy(x, calculator) for x in (interface, slab_a, slab_b))
    if _composition(slab_a) + _composition(slab_b) != _composition(interface):
        raise DataError("work of adhesion: slab A + slab B must hold exactly the atoms of the interface cell")
    area = interface_area(interface, axis)
    return EnergeticsResult(
        kind="adhesion", value_J_m2=(e_a + e_b - e_ab) / (n_interfaces * area) * EV_PER_A2_TO_J_PER_M2, area_A2=area,
        n_interfaces=n_interfaces, definition="(E_A + E_B - E_AB) / (n_interfaces A)",
        energies_eV={"interface": e_ab, "slab_a": e_a, "slab_b": e_b},
    )


def interface_formation_energy(
    interface: Atoms, bulks: Sequence[Atoms], calculator: Calculator, *, axis: int = 2, n_interfaces: int = 2,
    mu: dict[str, float] | None = None,
) -> EnergeticsResult:
    """γ_int = (E_AB - Σ n μ) / (n_interfaces A) in J/m², μ from the bulk cells of both phases."""
    e_ab = _energy(interface, calculator)
    refs = [(dict(_composition(b)), _energy(b, calculator)) for b in bulks]
    ref = reference_energy(_composition(interface), bulk=refs, mu=mu)
    area = interface_area(interface, axis)
    return EnergeticsResult(
        kind="interface_formation", value_J_m2=(e_ab - ref) / (n_interfaces * area) * EV_PER_A2_TO_J_PER_M2,
        area_A2=area, n_interfaces=n_interfaces, definition="(E_AB - sum n mu_bulk) / (n_interfaces A)",
        energies_eV={"interface": e_ab, "reference": ref, **{f"bulk_{i}": e for i, (_, e) in enumerate(refs)}},
    )
