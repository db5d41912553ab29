"""Synthetic labeled frames for tests, benchmarks and examples: a smooth multi-species Morse pair potential.

The labels are a toy surrogate (``LabelerInfo(kind="surrogate", name="toy-morse")``), never DFT: they make
training tests run in seconds with a potential that a small MACE can learn.  Cells are small Li / Li2O-like
cells (at most 16 atoms) so that one epoch over 50 frames takes about a second on one CPU core.

Units: energies in eV, distances in Å, forces in eV/Å, stress in eV/Å³ (ASE sign convention).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.neighborlist import neighbor_list

from mlipflow.data import LabeledFrame, LabelerInfo, Provenance

#: Morse parameters per unordered species pair: (D in eV, a in 1/Å, r0 in Å)
DEFAULT_MORSE: dict[tuple[str, str], tuple[float, float, float]] = {
    ("Li", "Li"): (0.25, 1.1, 3.0),
    ("Li", "O"): (1.2, 1.6, 2.0),
    ("O", "O"): (0.15, 1.3, 3.0),
}
#: isolated-atom energies of the toy potential (eV): a pair potential has zero energy for a lone atom
TOY_E0S: dict[str, float] = {"Li": -1.9, "O": -4.3}


class ToyMorseCalculator(Calculator):
    """Sum of smoothly cut Morse pair terms with per-species-pair parameters, plus a constant per atom.

    Parameters
    ----------
    params
        ``(D eV, a 1/Å, r0 Å)`` per unordered pair of chemical symbols.
    cutoff
        Pair cutoff (Å); the pair energy is multiplied by a cosine switch from ``0.8 * cutoff`` to it.
    e0s
        Energy per isolated atom of each element (eV), added to the total energy.
    """

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(
        self,
        params: dict[tuple[str, str], tuple[float, float, float]] | None = None,
        cutoff: float = 5.0,
        e0s: dict[str, float] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.params = dict(params or DEFAULT_MORSE)
        self.cutoff = cutoff
        self.e0s = dict(TOY_E0S if e0s is None else e0s)

    def _pair(self, a: str, b: str) -> tuple[float, float, float]:
        return self.params.get((a, b)) or self.params[(b, a)]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        i, j, d, dvec = neighbor_list("ijdD", atoms, self.cutoff)
        symbols = np.array(atoms.get_chemical_symbols())
        pars = np.array([self._pair(a, b) for a, b in zip(symbols[i], symbols[j], strict=True)]).reshape(-1, 3)
        depth, alpha, r0 = pars.T if len(pars) else (np.zeros(0),) * 3
        x = np.exp(-alpha * (d - r0))
        phi = depth * (x * x - 2.0 * x)
        dphi = depth * (-2.0 * alpha * x * x + 2.0 * alpha * x)
        r_on = 0.8 * self.cutoff
        t = np.clip((d - r_on) / (self.cutoff - r_on), 0.0, 1.0)
        sw = 0.5 * (1.0 + np.cos(np.pi * t))
        dsw = np.where((d > r_on) & (d < self.cutoff), -0.5 * np.pi * np.sin(np.pi * t) / (self.cutoff - r_on), 0.0)
        pair_e = phi * sw
        dpair = dphi * sw + phi * dsw  # dE_pair/dr
        energy = 0.5 * pair_e.sum() + sum(self.e0s.get(s, 0.0) for s in symbols)
        # each pair appears twice (i->j and j->i); the force on i from the half-term of pair (i, j)
        fvec = (0.5 * dpair / np.where(d > 0, d, 1.0))[:, None] * dvec  # = dE/d(r_j - r_i) * unit
        forces = np.zeros((len(atoms), 3))
        np.add.at(forces, i, fvec)
        np.add.at(forces, j, -fvec)
        self.results["energy"] = float(energy)
        self.results["free_energy"] = float(energy)
        self.results["forces"] = forces
        if atoms.cell.rank == 3:
            virial = -(dvec[:, :, None] * fvec[:, None, :]).sum(axis=0)
            stress = -virial / atoms.get_volume()
            stress = 0.5 * (stress + stress.T)
            self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]]


TOY_LABELER = LabelerInfo(name="toy-morse", kind="surrogate", version="1", settings={"e0s": TOY_E0S})


def base_cells(chemistry: str) -> list[Atoms]:
    """Small starting cells (Å) of one chemistry: ``"Li"`` (bcc), ``"Li2O"`` (antifluorite), ``"LiO"`` (rock salt)."""
    if chemistry == "Li":
        return [bulk("Li", "bcc", a=3.44, cubic=True).repeat((2, 2, 2)), bulk("Li", "bcc", a=3.44).repeat((2, 2, 2))]
    if chemistry == "Li2O":
        return [bulk("Li2O", "fluorite", a=4.61, cubic=True), bulk("Li2O", "fluorite", a=4.61).repeat((2, 2, 1))]
    if chemistry == "LiO":  # a fictitious rock-salt LiO: a second chemistry for fine-tuning tests
        return [bulk("LiO", "rocksalt", a=4.1, cubic=True), bulk("LiO", "rocksalt", a=4.1).repeat((2, 2, 2))]
    raise ValueError(f"unknown toy chemistry {chemistry!r}; use 'Li', 'Li2O' or 'LiO'")


def make_toy_atoms(
    n: int,
    chemistry: str = "Li2O",
    *,
    rattle: float = 0.08,
    strain: float = 0.03,
    seed: int = 0,
) -> list[Atoms]:
    """Rattled and strained small cells labeled with :class:`ToyMorseCalculator`.

    Parameters
    ----------
    n
        Number of frames.
    chemistry
        ``"Li"``, ``"Li2O"`` or ``"LiO"``.
    rattle
        Standard deviation of the Gaussian displacement of each atom (Å).
    strain
        Largest absolute component of the random symmetric strain (fraction).
    seed
        Random seed.

    Returns
    -------
    list of Atoms
        Each with a single-point calculator holding energy (eV), forces (eV/Å) and stress (eV/Å³).
    """
    rng = np.random.default_rng(seed)
    cells = base_cells(chemistry)
    calc = ToyMorseCalculator()
    out = []
    for k in range(n):
        atoms = cells[k % len(cells)].copy()
        eps = rng.uniform(-strain, strain, (3, 3))
        eps = 0.5 * (eps + eps.T)
        atoms.set_cell(atoms.cell @ (np.eye(3) + eps), scale_atoms=True)
        atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
        atoms.calc = calc
        e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f, stress=s)
        atoms.info["config_type"] = chemistry
        out.append(atoms)
    return out


def make_toy_frames(
    n: int, chemistry: str = "Li2O", *, rattle: float = 0.08, strain: float = 0.03, seed: int = 0
) -> list[LabeledFrame]:
    """:func:`make_toy_atoms` as :class:`~mlipflow.data.LabeledFrame` objects (config type = chemistry)."""
    frames = []
    for idx, atoms in enumerate(make_toy_atoms(n, chemistry, rattle=rattle, strain=strain, seed=seed)):
        frames.append(
            LabeledFrame.from_atoms(
                atoms,
                TOY_LABELER,
                energy=atoms.get_potential_energy(),
                forces=atoms.get_forces(),
                stress=atoms.get_stress(),
                provenance=Provenance(origin="synthetic", config_type=chemistry, source_index=idx,
                                      parameters={"rattle": rattle, "strain": strain, "seed": seed}),
            )
        )
    return frames


def finite_difference_check(
    atoms: Atoms, calc: Calculator, delta: float = 1e-4, atoms_idx: Sequence[int] = (0,)
) -> float:
    """Largest |analytic - numerical| force component over ``atoms_idx`` (eV/Å); for self-tests."""
    atoms = atoms.copy()
    atoms.calc = calc
    analytic = atoms.get_forces()
    worst = 0.0
    for a in atoms_idx:
        for c in range(3):
            pos = atoms.positions.copy()
            pos[a, c] += delta
            atoms.positions = pos
            ep = atoms.get_potential_energy()
            pos[a, c] -= 2 * delta
            atoms.positions = pos
            em = atoms.get_potential_energy()
            pos[a, c] += delta
            atoms.positions = pos
            worst = max(worst, abs(-(ep - em) / (2 * delta) - analytic[a, c]))
    return worst
