"""MLIP molecular dynamics with ASE, driven by a committee (or one model), recording uncertainty per frame.

:func:`run_md` runs one walker: a structure at a temperature or along a :class:`TemperatureSchedule`
(ramps, melt-quench), in one of the ensembles of :class:`MDSettings`; every ``record_every`` steps it records
the frame, the committee mean energy and forces, the force and energy spreads and the instantaneous
temperature to the large-data store (chunked, see :mod:`mlipflow.sampling.trajectory`), feeds the stability
monitors, and stops early when the uncertainty stays above the upper trust bound or a monitor fires.
:func:`run_walkers` runs many walkers (structures x temperatures) in one process, so one job fills a node.

Units: time step in fs, temperatures in K, pressure in GPa, bulk modulus in GPa, friction in 1/fs, damping
times in fs, spreads in eV/Å and eV/atom.
"""

from __future__ import annotations

import copy
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from ase import Atoms, units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from monty.json import MSONable
from pydantic import BaseModel, Field
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.errors import ConfigError
from mlipflow.sampling.monitors import Monitor, MonitorSet, default_monitors
from mlipflow.sampling.schemas import MDResult
from mlipflow.sampling.trajectory import TrajectoryStore
from mlipflow.sampling.uncertainty import Committee, CommitteeMeanCalculator
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)

Ensemble = Literal["nvt_langevin", "nvt_nose_hoover", "npt_berendsen", "npt_berendsen_aniso", "npt_nose_hoover",
                   "nve"]


@dataclass
class TemperatureSchedule(MSONable):
    """Target temperature as a piecewise-linear function of the MD step.

    Parameters
    ----------
    points
        ``(step, temperature)`` pairs (K), steps increasing; constant before the first and after the last.
    """

    points: list[tuple[int, float]]

    def __post_init__(self) -> None:
        if not self.points:
            raise ConfigError("a temperature schedule needs at least one (step, temperature) point")
        steps = [int(s) for s, _ in self.points]
        if steps != sorted(steps):
            raise ConfigError(f"temperature schedule steps must increase, got {steps}")
        if any(t < 0 for _, t in self.points):
            raise ConfigError(f"temperatures must be >= 0 K, got {self.points}")
        self.points = [(int(s), float(t)) for s, t in self.points]

    @classmethod
    def constant(cls, temperature: float) -> TemperatureSchedule:
        """Constant ``temperature`` (K)."""
        return cls([(0, temperature)])

    @classmethod
    def ramp(cls, start: float, end: float, n_steps: int) -> TemperatureSchedule:
        """Linear ramp from ``start`` to ``end`` (K) over ``n_steps`` steps."""
        return cls([(0, start), (n_steps, end)])

    @classmethod
    def melt_quench(cls, melt: float, final: float = 300.0, *, start: float = 300.0, heat_steps: int = 1000,
                    hold_steps: int = 2000, quench_steps: int = 2000, anneal_steps: int = 1000
                    ) -> TemperatureSchedule:
        """Heat from ``start`` to ``melt``, hold, quench linearly to ``final``, anneal at ``final`` (K).

        The length is ``heat_steps + hold_steps + quench_steps + anneal_steps`` steps.
        """
        s1 = heat_steps
        s2 = s1 + hold_steps
        s3 = s2 + quench_steps
        s4 = s3 + anneal_steps
        return cls([(0, start), (s1, melt), (s2, melt), (s3, final), (s4, final)])

    @property
    def is_constant(self) -> bool:
        return len({t for _, t in self.points}) == 1

    @property
    def n_steps(self) -> int:
        """Step of the last point (the natural length of a ramp or melt-quench)."""
        return self.points[-1][0]

    @property
    def max_temperature(self) -> float:
        return max(t for _, t in self.points)

    def at(self, step: int) -> float:
        """Target temperature at ``step`` (K)."""
        steps = [s for s, _ in self.points]
        temps = [t for _, t in self.points]
        return float(np.interp(step, steps, temps))


class MDSettings(BaseModel):
    """Settings of one MD walker.

    Parameters
    ----------
    ensemble
        ``nvt_langevin`` (ASE Langevin), ``nvt_nose_hoover`` (Nosé-Hoover chain), ``npt_berendsen``
        (Berendsen thermostat and isotropic barostat), ``npt_berendsen_aniso`` (the same with each cell length
        scaled on its own, for layered and interface cells), ``npt_nose_hoover`` (isotropic MTK Nosé-Hoover NPT)
        or ``nve``.  Temperature ramps need ``nvt_langevin`` or a Berendsen NPT (the others keep a constant target
        or, for NVE, none at all).  NPT is refused on cells with vacuum (slabs): the barostat would collapse it.
    timestep
        Time step (fs).
    n_steps
        MD steps (default: the schedule's length, or 1000 for a constant temperature).
    record_every
        Record a frame every this many steps (the first frame, step 0, is always recorded).
    friction
        Langevin friction (1/fs).
    tdamp
        Thermostat time constant (fs) of Nosé-Hoover and Berendsen.
    pressure
        Target pressure of NPT (GPa).
    pdamp
        Barostat time constant (fs).
    bulk_modulus
        Estimate of the bulk modulus (GPa) used to scale Berendsen's barostat.
    upper_trust
        Stop when the max force spread stays above this bound (eV/Å) for ``patience`` recorded frames.
    patience
        Recorded frames above ``upper_trust`` before stopping.
    stop_on_monitor
        Stop when a stability monitor fires.
    seed
        Seed of the initial velocities and of the Langevin noise.
    relax_steps
        Before the MD, relax the positions (cell fixed) with the driving calculator for at most this many FIRE
        steps (0: start from the cell as given).  An unrelaxed boundary or interface otherwise releases its excess
        energy as heat and runs away from its target temperature in the first picoseconds.
    relax_fmax
        Force criterion of that relaxation (eV/Å).
    velocity_scale
        Initial Maxwell–Boltzmann velocities are drawn at this multiple of the starting temperature.  2 brings a
        crystal started on its lattice sites to the target temperature within about a phonon period
        (equipartition halves the kinetic energy), where 1 leaves it at half the target until the thermostat
        catches up (about 1/friction).
    chunk_frames
        Frames per stored trajectory chunk.
    store_forces
        Store the committee mean forces and per-atom spreads with each frame.
    """

    ensemble: Ensemble = "nvt_langevin"
    timestep: float = Field(1.0, gt=0)
    n_steps: int | None = Field(None, ge=0)
    record_every: int = Field(10, ge=1)
    friction: float = Field(0.01, gt=0)
    tdamp: float = Field(100.0, gt=0)
    pressure: float = 0.0
    pdamp: float = Field(1000.0, gt=0)
    bulk_modulus: float = Field(50.0, gt=0)
    upper_trust: float | None = Field(None, gt=0)
    patience: int = Field(3, ge=1)
    stop_on_monitor: bool = True
    seed: int = 0
    relax_steps: int = Field(0, ge=0)
    relax_fmax: float = Field(0.1, gt=0)
    velocity_scale: float = Field(1.0, gt=0)
    chunk_frames: int = Field(500, ge=1)
    store_forces: bool = True


def make_dynamics(atoms: Atoms, settings: MDSettings, temperature: float, schedule: TemperatureSchedule,
                  rng: np.random.Generator) -> Any:
    """The ASE dynamics object of ``settings.ensemble`` at ``temperature`` (K) for ``atoms``.

    The one place that maps mlipflow's MD settings to ASE integrators; sampling and benchmarking both use it.
    """
    dt = settings.timestep * units.fs
    if not schedule.is_constant and settings.ensemble not in ("nvt_langevin", "npt_berendsen", "npt_berendsen_aniso"):
        raise ConfigError(f"ensemble {settings.ensemble!r} cannot follow a temperature ramp (asked "
                          f"{schedule.points[0][1]:.0f} -> {schedule.max_temperature:.0f} K); use 'nvt_langevin' or "
                          "'npt_berendsen' for a ramp or melt-quench")
    if settings.ensemble.startswith("npt"):
        if atoms.cell.rank != 3:
            raise ConfigError(f"ensemble {settings.ensemble!r} needs a 3D periodic cell")
        from mlipflow.sampling.monitors import vacuum_axes

        gaps = vacuum_axes(atoms)
        if gaps:
            raise ConfigError(f"ensemble {settings.ensemble!r} on a cell with vacuum along axis "
                              f"{', '.join(f'{a} ({g:.1f} Å)' for a, g in gaps.items())}: a barostat collapses "
                              "the vacuum; use an NVT ensemble for slabs")
    if settings.ensemble == "nvt_langevin":
        from ase.md.langevin import Langevin

        return Langevin(atoms, dt, temperature_K=temperature, friction=settings.friction / units.fs, fixcm=False,
                        rng=rng)
    if settings.ensemble == "nvt_nose_hoover":
        from ase.md.nose_hoover_chain import NoseHooverChainNVT

        return NoseHooverChainNVT(atoms, dt, temperature_K=temperature, tdamp=settings.tdamp * units.fs)
    if settings.ensemble == "npt_berendsen":
        from ase.md.nptberendsen import NPTBerendsen

        return NPTBerendsen(atoms, dt, temperature_K=temperature, pressure_au=settings.pressure * units.GPa,
                            taut=settings.tdamp * units.fs, taup=settings.pdamp * units.fs,
                            compressibility_au=1.0 / (settings.bulk_modulus * units.GPa))
    if settings.ensemble == "npt_berendsen_aniso":
        from ase.md.nptberendsen import Inhomogeneous_NPTBerendsen

        return Inhomogeneous_NPTBerendsen(atoms, dt, temperature_K=temperature,
                                          pressure_au=settings.pressure * units.GPa, taut=settings.tdamp * units.fs,
                                          taup=settings.pdamp * units.fs,
                                          compressibility_au=1.0 / (settings.bulk_modulus * units.GPa))
    if settings.ensemble == "npt_nose_hoover":
        from ase.md.nose_hoover_chain import IsotropicMTKNPT

        return IsotropicMTKNPT(atoms, dt, temperature_K=temperature, pressure_au=settings.pressure * units.GPa,
                               tdamp=settings.tdamp * units.fs, pdamp=settings.pdamp * units.fs)
    from ase.md.verlet import VelocityVerlet

    return VelocityVerlet(atoms, dt)


def _as_atoms(structure: Structure | Atoms) -> tuple[Atoms, str | None]:
    if isinstance(structure, Structure):
        prov = (structure.properties or {}).get("provenance") or {}
        return AseAtomsAdaptor.get_atoms(structure), prov.get("family")
    atoms = structure.copy()
    prov = atoms.info.get("provenance") or {}
    return atoms, atoms.info.get("family") or (prov.get("family") if isinstance(prov, dict) else None)


def run_md(
    structure: Structure | Atoms,
    committee: Committee,
    temperature: float | TemperatureSchedule,
    settings: MDSettings | None = None,
    *,
    stores: Stores | None = None,
    monitors: Sequence[Monitor] | None = None,
    metadata: dict[str, Any] | None = None,
    walker: int = 0,
    keep_frames: bool = False,
) -> tuple[MDResult, list[Atoms]]:
    """Run one MD walker with a committee, recording frames, uncertainty and monitor verdicts.

    Parameters
    ----------
    structure
        Starting structure (Å).  A pymatgen structure's ``properties["provenance"]["family"]`` (or an Atoms'
        ``info["family"]``) labels the walker's family.
    committee
        Member calculators, or one calculator (committee or single model), see
        :mod:`mlipflow.sampling.uncertainty`.
    temperature
        Constant target temperature (K) or a :class:`TemperatureSchedule`.
    settings
        :class:`MDSettings` (default Langevin NVT, 1 fs, record every 10 steps).
    stores
        Where the trajectory goes (``None``: not stored; use ``keep_frames`` to get the frames back).
    monitors
        Stability monitors (default :func:`~mlipflow.sampling.monitors.default_monitors`); they are copied.
    metadata
        Extra metadata for the trajectory header and the result.
    walker
        Index of the walker (its seed is ``settings.seed + walker``).
    keep_frames
        Also return the recorded frames in memory (small runs only).

    Returns
    -------
    MDResult, list of Atoms
        The summary, and the recorded frames if ``keep_frames`` (else an empty list).
    """
    settings = settings or MDSettings()
    schedule = temperature if isinstance(temperature, TemperatureSchedule) else TemperatureSchedule.constant(
        temperature)
    n_steps = settings.n_steps if settings.n_steps is not None else (schedule.n_steps or 1000)
    atoms, family = _as_atoms(structure)
    metadata = {"family": family, "walker": walker, "ensemble": settings.ensemble,
                "timestep_fs": settings.timestep, "schedule": schedule.points, **(metadata or {})}
    rng = np.random.default_rng(settings.seed + walker)
    calc = CommitteeMeanCalculator(committee)
    atoms.calc = calc
    if settings.relax_steps:
        from ase.optimize import FIRE

        opt = FIRE(atoms, logfile=None)
        opt.run(fmax=settings.relax_fmax, steps=settings.relax_steps)
        metadata["relaxed_steps"] = int(opt.nsteps)
    t0 = schedule.at(0)
    MaxwellBoltzmannDistribution(atoms, temperature_K=t0 * settings.velocity_scale, rng=rng)
    Stationary(atoms)
    dyn = make_dynamics(atoms, settings, t0, schedule, rng)
    mset = MonitorSet(copy.deepcopy(list(default_monitors() if monitors is None else monitors)))
    writer = (TrajectoryStore(stores).writer(atoms, metadata=metadata, chunk_frames=settings.chunk_frames)
              if stores is not None else None)
    frames: list[Atoms] = []
    spreads: list[float] = []
    temps: list[float] = []
    above = 0
    stop_reason, stop_step = "completed", None
    step = 0
    start = time.perf_counter()

    def record() -> bool:
        """Record the current frame; return True to stop."""
        nonlocal above, stop_reason, stop_step
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        unc = calc.last_uncertainty()
        target = schedule.at(step)
        temp = float(atoms.get_temperature())
        atoms.info["target_temperature"] = target
        frame_index = len(spreads)
        values: dict[str, Any] = {"step": step, "time": step * settings.timestep, "temperature": temp,
                                  "target_temperature": target, **unc.as_dict()}
        if writer is not None:
            writer.append(atoms, energy=energy, forces=forces if settings.store_forces else None,
                          forces_spread=calc.results["forces_spread"] if settings.store_forces else None,
                          **values)
        if keep_frames:
            snap = atoms.copy()
            snap.info.update(values)
            from ase.calculators.singlepoint import SinglePointCalculator

            snap.calc = SinglePointCalculator(snap, energy=energy, forces=forces.copy())
            frames.append(snap)
        spreads.append(unc.max_force_spread)
        temps.append(temp)
        fired = mset.check(atoms, frame_index)
        if fired and settings.stop_on_monitor:
            stop_reason, stop_step = f"monitor:{fired[0].monitor}", step
            return True
        if settings.upper_trust is not None:
            above = above + 1 if unc.max_force_spread > settings.upper_trust else 0
            if above >= settings.patience:
                stop_reason, stop_step = "uncertainty", step
                return True
        return False

    stop = record()
    while not stop and step < n_steps:
        block = min(settings.record_every, n_steps - step)
        if not schedule.is_constant and hasattr(dyn, "set_temperature"):
            dyn.set_temperature(temperature_K=schedule.at(step + block / 2))
        try:
            dyn.run(block)
        except Exception as exc:  # a blown-up model: keep what was recorded, say why it stopped
            stop_reason, stop_step = f"error: {type(exc).__name__}: {exc}", step
            logger.warning("walker %d stopped at step %d: %s", walker, step, stop_reason)
            break
        step += block
        if not np.all(np.isfinite(atoms.positions)):
            stop_reason, stop_step = "error: non-finite positions", step
            break
        stop = record()
    seconds = time.perf_counter() - start
    verdicts = [v.as_dict() for v in mset.summary()]
    traj_id = None
    if writer is not None:
        traj_id = writer.close(stop_reason=stop_reason, stop_step=stop_step, verdicts=verdicts)
    result = MDResult(
        trajectory_id=traj_id,
        walker=walker,
        family=family,
        temperature=t0 if schedule.is_constant else schedule.at(0),
        max_temperature=schedule.max_temperature,
        n_atoms=len(atoms),
        n_frames=len(spreads),
        n_steps=step,
        stop_reason=stop_reason,
        stop_step=stop_step,
        verdicts=verdicts,
        max_force_spread=float(max(spreads)) if spreads else 0.0,
        mean_max_force_spread=float(np.mean(spreads)) if spreads else 0.0,
        mean_temperature=float(np.mean(temps[1:] or temps)) if temps else 0.0,
        seconds=seconds,
        steps_per_second=step / seconds if seconds > 0 else 0.0,
        metadata={k: v for k, v in metadata.items() if k != "schedule"},
    )
    logger.info("walker %d (%s, %.0f K): %d steps, %d frames, stop: %s, max spread %.3f eV/Å", walker, family,
                schedule.max_temperature, step, result.n_frames, stop_reason, result.max_force_spread)
    return result, frames


@dataclass
class WalkerPlan:
    """The walkers of one job: every structure at every temperature (or schedule)."""

    structures: list[Structure | Atoms]
    temperatures: list[float | TemperatureSchedule] = field(default_factory=lambda: [300.0])

    def walkers(self) -> list[tuple[int, int, float | TemperatureSchedule]]:
        """(structure index, temperature index, temperature) per walker, structure-major."""
        return [(i, j, t) for (i, _), (j, t) in itertools.product(enumerate(self.structures),
                                                                    enumerate(self.temperatures))]


def run_walkers(
    structures: Sequence[Structure | Atoms],
    temperatures: Sequence[float | TemperatureSchedule],
    committee: Committee | Any,
    settings: MDSettings | None = None,
    *,
    stores: Stores | None = None,
    monitors: Sequence[Monitor] | None = None,
    metadata: dict[str, Any] | None = None,
    processes: int = 1,
) -> list[MDResult]:
    """Run every structure at every temperature (one walker each) with one committee.

    Walker ``k`` (structure-major order) is seeded with ``settings.seed + k`` wherever it runs, so the result does
    not depend on ``processes``; its trajectory header holds the structure and temperature indices.  See
    :func:`run_md` for the parameters.

    Parameters
    ----------
    committee
        The committee (calculators), or a *builder* (an object with ``build()`` returning one, such as a
        :class:`~mlipflow.sampling.uncertainty.CalculatorFactory`), which ``processes > 1`` needs: each worker
        process builds its own calculator.
    processes
        Walkers run at the same time in separate processes (spawned; each uses ``settings.torch_threads`` torch
        threads of the stores' settings).  1: one after the other in this process.
    """
    plan = WalkerPlan(list(structures), list(temperatures))
    walkers = [(k, i, j, temp, {"structure_index": i, "temperature_index": j, **(metadata or {})})
               for k, (i, j, temp) in enumerate(plan.walkers())]
    builder = committee if hasattr(committee, "build") else None
    if processes > 1 and len(walkers) > 1:
        if builder is None:
            raise ConfigError("running walkers in several processes needs a calculator builder (e.g. a "
                              "CalculatorFactory), not calculator objects")
        from mlipflow.parallel import map_in_processes

        tasks = [(plan.structures[i], temp, settings, monitors, meta, k) for k, i, j, temp, meta in walkers]
        return map_in_processes(_walker_task, tasks, processes=processes, builder=builder,
                                settings=stores.settings if stores is not None else None,
                                with_stores=stores is not None)
    calc = builder.build() if builder is not None else committee
    results = []
    for k, i, _j, temp, meta in walkers:
        result, _ = run_md(plan.structures[i], calc, temp, settings, stores=stores, monitors=monitors,
                           metadata=meta, walker=k)
        results.append(result)
    return results


def _walker_task(context: Any, structure: Structure | Atoms, temperature: float | TemperatureSchedule,
                 settings: MDSettings | None, monitors: Sequence[Monitor] | None, metadata: dict[str, Any],
                 walker: int) -> MDResult:
    """One walker in a worker process (``context`` holds the process's calculator and stores)."""
    result, _ = run_md(structure, context.calculator, temperature, settings, stores=context.stores,
                       monitors=monitors, metadata=metadata, walker=walker)
    return result
