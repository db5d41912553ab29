"""MD speed of a model: steps per second and ns/day at several atom counts (V37).

Each size is a supercell of the given structure; the timing covers ``n_steps`` velocity-Verlet steps after
``warmup`` untimed steps (model loading and first-call compilation are not counted).  Units: ns/day for a
``timestep_fs`` fs step; s per atom-step.
"""

# Names carry their unit as in ASE's ``temperature_K`` (``D_cm2_s``, ``Ea_eV``): keep the capitals.
# ruff: noqa: N803

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from pydantic import BaseModel

logger = logging.getLogger(__name__)


class SpeedPoint(BaseModel):
    """Speed at one size.

    Parameters
    ----------
    n_atoms
        Atoms in the cell.
    steps_per_s
        MD steps per wall-clock second.
    ns_per_day
        Simulated ns per wall-clock day at ``timestep_fs``.
    us_per_atom_step
        Wall time per atom and step (µs).
    timestep_fs
        Time step (fs).
    n_steps
        Timed steps.
    """

    n_atoms: int
    steps_per_s: float
    ns_per_day: float
    us_per_atom_step: float
    timestep_fs: float
    n_steps: int


def supercell_for(atoms: Atoms, target_atoms: int) -> Atoms:
    """The smallest near-cubic repeat of ``atoms`` with at least ``target_atoms`` atoms."""
    n = len(atoms)
    lengths = atoms.cell.lengths()
    reps = np.ones(3, int)
    while n * reps.prod() < target_atoms:
        reps[int(np.argmin(lengths * reps))] += 1
    return atoms.repeat(tuple(int(r) for r in reps))


def md_speed(
    atoms: Atoms,
    calculator: Calculator,
    *,
    sizes: Sequence[int] = (16, 64, 128),
    n_steps: int = 10,
    warmup: int = 2,
    timestep_fs: float = 1.0,
    temperature_K: float = 300.0,
    seed: int = 0,
) -> list[SpeedPoint]:
    """Time NVE MD at several atom counts (supercells of ``atoms`` with at least each of ``sizes`` atoms).

    Parameters
    ----------
    sizes
        Target atom counts.
    n_steps
        Timed steps per size.
    warmup
        Untimed steps before timing.
    timestep_fs
        Time step (fs), used for ns/day.
    temperature_K
        Initial Maxwell–Boltzmann temperature (K).
    seed
        Seed of the velocities.
    """
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    points = []
    for size in sizes:
        work = supercell_for(atoms, size)
        work.calc = calculator
        MaxwellBoltzmannDistribution(work, temperature_K=temperature_K, rng=np.random.default_rng(seed))
        dyn = VelocityVerlet(work, timestep_fs * units.fs)
        dyn.run(warmup)
        start = time.perf_counter()
        dyn.run(n_steps)
        elapsed = time.perf_counter() - start
        sps = n_steps / elapsed
        point = SpeedPoint(
            n_atoms=len(work), steps_per_s=sps, ns_per_day=sps * timestep_fs * 86400 * 1e-6,
            us_per_atom_step=elapsed / (n_steps * len(work)) * 1e6, timestep_fs=timestep_fs, n_steps=n_steps,
        )
        logger.info("speed: %d atoms, %.2f steps/s, %.3f ns/day", point.n_atoms, sps, point.ns_per_day)
        points.append(point)
    return points


def plot_speed(results: dict[str, list[SpeedPoint]], title: str = "") -> object:
    """Wall time per step against atom count (log-log) for several models; a Figure."""
    from mlipflow.benchmark.plotting import new_figure

    fig, (ax,) = new_figure(1)
    for label, pts in results.items():
        ax.loglog([p.n_atoms for p in pts], [1.0 / p.steps_per_s for p in pts], "o-", label=label)
    ax.set_xlabel("atoms")
    ax.set_ylabel("s per MD step")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
