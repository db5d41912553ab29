"""Mechanics: relaxed lattice, equation of state, elastic constants, phonon DOS (V10, V16–V18).

Units: lengths Å, volumes Å³, energies eV, bulk modulus and elastic constants GPa, frequencies THz.

The functions work with any ASE calculator in-process (a MACE model, a committee, CHGNet, a toy potential).
atomate2's force-field flows (``ForceFieldEosMaker``, ``ElasticMaker``, ``PhononMaker``) do the same physics as
multi-job flows, but they build their calculator from an MLFF name or an import path inside each job, which
rules out in-process calculators (committees built from the registry, callables, test potentials) and turns a
2-second EOS into a 9-job flow with a job store; :func:`atomate2_eos_maker` and :func:`atomate2_elastic_maker`
return those Makers for users who want them on FireWorks.

Definitions
-----------
EOS
    The cell is scaled isotropically (fractional coordinates fixed, or ions relaxed with ``relax_ions``) around the
    given cell by linear strains in ``strains``; E(V) is fitted with ase.eos (Birch–Murnaghan by default).  The
    equilibrium lattice parameters are the input cell's lengths times (V0/V)^(1/3).
Elastic constants
    C_ij = ∂σ_i/∂ε_j by central finite differences of the stress (ASE sign: positive = tensile) under ±``delta``
    Voigt strains (shear as engineering strain), on the given (relaxed) cell; Voigt–Reuss–Hill moduli from
    pymatgen's ``ElasticTensor``.
"""

# Names carry their unit as in ASE's ``temperature_K`` (``D_cm2_s``, ``Ea_eV``): keep the capitals.
# ruff: noqa: N815

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from pydantic import BaseModel

from mlipflow.errors import DataError

logger = logging.getLogger(__name__)


def relax(
    atoms: Atoms, calculator: Calculator, *, fmax: float = 1e-3, steps: int = 300, cell: bool = True,
    hydrostatic: bool = False,
) -> Atoms:
    """Relax positions (and the cell, with ase's ``FrechetCellFilter``) with BFGS; returns a new Atoms.

    Parameters
    ----------
    fmax
        Force (and scaled stress) convergence (eV/Å).
    steps
        Largest number of optimiser steps.
    cell
        Also relax the cell.
    hydrostatic
        Keep the cell shape (scale only).
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    work = atoms.copy()
    work.calc = calculator
    target = FrechetCellFilter(work, hydrostatic_strain=hydrostatic) if cell else work
    opt = BFGS(target, logfile=None)
    converged = opt.run(fmax=fmax, steps=steps)
    if not converged:
        logger.warning("relaxation of %s did not reach fmax=%g eV/Å in %d steps", work.get_chemical_formula(), fmax,
                       steps)
    return work


class EOSResult(BaseModel):
    """Equation of state of one structure.

    Parameters
    ----------
    volumes, energies
        Sampled volumes (Å³) and energies (eV) of the whole cell.
    v0, e0
        Equilibrium volume (Å³) and energy (eV).
    bulk_modulus_GPa
        B0 (GPa).
    lattice_abc
        Equilibrium cell lengths (Å).
    eos
        ase.eos form used.
    n_atoms
        Atoms in the cell.
    """

    volumes: list[float]
    energies: list[float]
    v0: float
    e0: float
    bulk_modulus_GPa: float
    lattice_abc: tuple[float, float, float]
    eos: str
    n_atoms: int


def equation_of_state(
    atoms: Atoms,
    calculator: Calculator,
    *,
    strains: Sequence[float] = tuple(np.linspace(-0.03, 0.03, 7)),
    eos: str = "birchmurnaghan",
    relax_ions: bool = False,
) -> EOSResult:
    """E(V) by isotropic scaling and an ase.eos fit (see module docstring).

    Parameters
    ----------
    atoms
        Structure (ideally relaxed; the strains are around its cell).
    calculator
        ASE calculator.
    strains
        Linear strains (fractions) of the cell.
    eos
        ase.eos form (``birchmurnaghan``, ``murnaghan``, ``vinet``, ...).
    relax_ions
        Relax positions at fixed cell in each point (BFGS, fmax 0.01 eV/Å).
    """
    from ase.eos import EquationOfState

    volumes, energies = [], []
    for s in strains:
        work = atoms.copy()
        work.set_cell(atoms.cell.array * (1.0 + s), scale_atoms=True)
        work.calc = calculator
        if relax_ions:
            work = relax(work, calculator, fmax=0.01, cell=False)
        volumes.append(float(work.get_volume()))
        energies.append(float(work.get_potential_energy()))
    fit = EquationOfState(volumes, energies, eos=eos)
    v0, e0, b = fit.fit()
    if not (min(volumes) <= v0 <= max(volumes)):
        logger.warning("EOS minimum %.3f Å³ lies outside the sampled volumes: widen the strains", v0)
    scale = (v0 / atoms.get_volume()) ** (1 / 3)
    lengths = tuple(float(x) for x in atoms.cell.lengths() * scale)
    return EOSResult(
        volumes=volumes, energies=energies, v0=float(v0), e0=float(e0), bulk_modulus_GPa=float(b / units.GPa),
        lattice_abc=lengths, eos=eos, n_atoms=len(atoms),  # type: ignore[arg-type]
    )


class ElasticResult(BaseModel):
    """Elastic constants.

    Parameters
    ----------
    C_GPa
        6x6 Voigt elastic tensor (GPa), symmetrised.
    bulk_modulus_vrh_GPa, shear_modulus_vrh_GPa
        Voigt–Reuss–Hill bulk and shear moduli (GPa).
    youngs_modulus_GPa, poisson_ratio
        Isotropic averages (GPa, dimensionless).
    delta
        Strain amplitude used.
    """

    C_GPa: list[list[float]]
    bulk_modulus_vrh_GPa: float
    shear_modulus_vrh_GPa: float
    youngs_modulus_GPa: float | None = None
    poisson_ratio: float | None = None
    delta: float


_VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


def elastic_constants(
    atoms: Atoms, calculator: Calculator, *, delta: float = 0.005, relax_ions: bool = False
) -> ElasticResult:
    """C_ij by finite strain (see module docstring).

    Parameters
    ----------
    atoms
        Relaxed structure (zero stress), e.g. from :func:`relax`.
    calculator
        ASE calculator.
    delta
        Strain amplitude (fraction; shear as engineering strain).
    relax_ions
        Relax positions in each strained cell (needed for structures with internal degrees of freedom).
    """
    from pymatgen.analysis.elasticity import ElasticTensor

    c = np.zeros((6, 6))
    for j, (a, b) in enumerate(_VOIGT):
        stresses = []
        for sign in (+1, -1):
            eps = np.zeros((3, 3))
            if a == b:
                eps[a, a] = sign * delta
            else:
                eps[a, b] = eps[b, a] = sign * delta / 2
            work = atoms.copy()
            work.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            work.calc = calculator
            if relax_ions:
                work = relax(work, calculator, fmax=0.005, cell=False)
            stresses.append(work.get_stress(voigt=True) / units.GPa)
        c[:, j] = (stresses[0] - stresses[1]) / (2 * delta)
    c = 0.5 * (c + c.T)
    tensor = ElasticTensor.from_voigt(c)
    try:
        youngs = float(tensor.y_mod) / 1e9
        poisson = float(tensor.homogeneous_poisson)
    except Exception:
        youngs = poisson = None
    return ElasticResult(
        C_GPa=c.tolist(), bulk_modulus_vrh_GPa=float(tensor.k_vrh), shear_modulus_vrh_GPa=float(tensor.g_vrh),
        youngs_modulus_GPa=youngs, poisson_ratio=poisson, delta=delta,
    )


class PhononDOSResult(BaseModel):
    """Phonon DOS from phonopy's finite displacements.

    Parameters
    ----------
    frequency_THz, dos
        Frequency axis (THz) and total DOS (states/THz per cell).
    min_frequency_THz
        Lowest frequency on the mesh (THz; clearly negative means a dynamical instability).
    supercell
        Supercell matrix diagonal.
    phonopy_version
        Version used.
    """

    frequency_THz: list[float]
    dos: list[float]
    min_frequency_THz: float
    supercell: tuple[int, int, int]
    phonopy_version: str


def phonon_dos(
    atoms: Atoms, calculator: Calculator, *, supercell: tuple[int, int, int] = (2, 2, 2), displacement: float = 0.01,
    mesh: tuple[int, int, int] = (12, 12, 12),
) -> PhononDOSResult:
    """Harmonic phonon DOS with phonopy (finite displacements of ``displacement`` Å in a ``supercell``)."""
    try:
        import phonopy
        from phonopy import Phonopy
        from phonopy.structure.atoms import PhonopyAtoms
    except ImportError as exc:
        raise DataError("phonon DOS needs phonopy: pip install phonopy==4.10.0") from exc
    unit = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell.array,
                        scaled_positions=atoms.get_scaled_positions())
    ph = Phonopy(unit, supercell_matrix=np.diag(supercell))
    ph.generate_displacements(distance=displacement)
    forces = []
    for sc in ph.supercells_with_displacements:
        work = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        work.calc = calculator
        forces.append(work.get_forces().copy())
    ph.forces = np.asarray(forces)
    ph.produce_force_constants()
    ph.run_mesh(list(mesh), is_gamma_center=True)
    ph.run_total_dos()
    dos = ph.get_total_dos_dict()
    freqs = ph.get_mesh_dict()["frequencies"]
    return PhononDOSResult(
        frequency_THz=np.asarray(dos["frequency_points"]).tolist(), dos=np.asarray(dos["total_dos"]).tolist(),
        min_frequency_THz=float(np.min(freqs)), supercell=supercell, phonopy_version=phonopy.__version__,
    )


def _force_field_spec(calculator_path: str) -> dict[str, str]:
    module, _, name = calculator_path.replace(":", ".").rpartition(".")
    if not module:
        raise DataError(f"calculator path {calculator_path!r} must be 'package.module:Factory'")
    return {"@module": module, "@callable": name}


def atomate2_eos_maker(calculator_path: str, calculator_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """atomate2's ``ForceFieldEosMaker`` for a calculator given by import path (``package.module:Factory``)."""
    from atomate2.forcefields.flows.eos import ForceFieldEosMaker

    return ForceFieldEosMaker.from_force_field_name(
        _force_field_spec(calculator_path), calculator_kwargs=calculator_kwargs or {}, **kwargs
    )


def atomate2_elastic_maker(calculator_path: str, calculator_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """atomate2's force-field ``ElasticMaker`` for a calculator given by import path."""
    from atomate2.forcefields.flows.elastic import ElasticMaker

    return ElasticMaker.from_force_field_name(
        _force_field_spec(calculator_path), calculator_kwargs=calculator_kwargs or {}, **kwargs
    )


def plot_eos(results: dict[str, EOSResult], title: str = "") -> object:
    """E/atom against V/atom for several models (each shifted to its own minimum); a Figure."""
    from mlipflow.benchmark.plotting import new_figure

    fig, (ax,) = new_figure(1)
    for label, res in results.items():
        v = np.asarray(res.volumes) / res.n_atoms
        e = (np.asarray(res.energies) - res.e0) / res.n_atoms
        ax.plot(v, e, "o-", label=f"{label}: B={res.bulk_modulus_GPa:.1f} GPa")
    ax.set_xlabel("V (Å³/atom)")
    ax.set_ylabel("E - E0 (eV/atom)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
