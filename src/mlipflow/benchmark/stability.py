"""Stability of long MD with the model: time to first failure under the sampling package's monitors (V33, F5).

The monitors (minimum distance, density drift, voids, ballistic atoms, temperature runaway) are those of
:mod:`mlipflow.sampling.monitors`; this module only runs MD with them at stated temperatures and reports a
verdict per run.  Units: temperature K, time step fs, time ps.
"""

# Names carry their unit as in ASE's ``temperature_K`` (``D_cm2_s``, ``Ea_eV``): keep the capitals.
# ruff: noqa: N803, N815

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import BaseModel, Field

from mlipflow.benchmark.errors import run_md

logger = logging.getLogger(__name__)


class _Stop(Exception):  # noqa: N818 - control flow, not an error
    """Raised inside the MD callback to end a run at its first failure."""


class StabilityResult(BaseModel):
    """Verdict of one long MD run.

    Parameters
    ----------
    stable
        ``True`` when no monitor fired within the run.
    temperature_K, timestep_fs
        MD settings.
    steps_requested, steps_run
        Steps asked for and steps done (fewer when stopped at the first failure).
    time_to_failure_ps
        Simulated time at the first failure (ps), ``None`` when stable.
    first_failure
        Message of the first monitor that fired.
    verdicts
        One dict per monitor (``monitor``, ``fired``, ``frame``, ``value``, ``message``).
    check_every
        Steps between monitor checks (a frame = one check).
    seed
        Seed of the run.
    """

    stable: bool
    temperature_K: float
    timestep_fs: float
    steps_requested: int
    steps_run: int
    time_to_failure_ps: float | None = None
    first_failure: str | None = None
    verdicts: list[dict[str, Any]] = Field(default_factory=list)
    check_every: int
    seed: int


def run_stability(
    atoms: Atoms,
    calculator: Calculator,
    *,
    temperature_K: float,
    n_steps: int,
    timestep_fs: float = 1.0,
    check_every: int = 10,
    monitors: Sequence[Any] | None = None,
    seed: int = 0,
    stop_at_first: bool = True,
) -> StabilityResult:
    """Langevin MD of ``n_steps`` with the monitors checked every ``check_every`` steps.

    Parameters
    ----------
    atoms
        Start structure.
    calculator
        The model (ASE calculator).
    temperature_K
        Thermostat temperature (K).
    n_steps
        Steps (the time is ``n_steps * timestep_fs`` fs).
    timestep_fs
        Time step (fs).
    check_every
        Steps between two monitor checks.
    monitors
        Monitors with ``reset``/``check`` (default :func:`mlipflow.sampling.monitors.default_monitors`).
    seed
        Seed of velocities and thermostat.
    stop_at_first
        End the run at the first failure.
    """
    from mlipflow.sampling.monitors import MonitorSet

    mset = MonitorSet(monitors)
    state = {"steps": 0, "first_step": None}

    def callback(work: Atoms, step: int) -> None:
        state["steps"] = step
        if step % check_every and step != 1:
            return
        frame = work.copy()
        frame.info["target_temperature"] = temperature_K
        fired = mset.check(frame, step // check_every)
        if fired and state["first_step"] is None:
            state["first_step"] = step
            if stop_at_first:
                raise _Stop

    try:
        run_md(atoms, calculator, temperature_K=temperature_K, n_steps=n_steps, timestep_fs=timestep_fs,
               sample_every=n_steps + 1, seed=seed, callback=callback)
    except _Stop:
        pass
    except (FloatingPointError, ValueError, RuntimeError) as exc:  # a model can blow up numerically
        state["first_step"] = state["first_step"] or state["steps"]
        verdicts = [v.as_dict() for v in mset.summary()]
        verdicts.append({"monitor": "integrator", "fired": True, "frame": None, "value": None, "message": str(exc)})
        return StabilityResult(
            stable=False, temperature_K=temperature_K, timestep_fs=timestep_fs, steps_requested=n_steps,
            steps_run=state["steps"], time_to_failure_ps=state["first_step"] * timestep_fs / 1000,
            first_failure=f"MD failed: {exc}", verdicts=verdicts, check_every=check_every, seed=seed,
        )
    summary = mset.summary()
    fired = [v for v in summary if v.fired]
    first = min(fired, key=lambda v: v.frame if v.frame is not None else 0) if fired else None
    result = StabilityResult(
        stable=not fired, temperature_K=temperature_K, timestep_fs=timestep_fs, steps_requested=n_steps,
        steps_run=state["steps"],
        time_to_failure_ps=None if state["first_step"] is None else state["first_step"] * timestep_fs / 1000,
        first_failure=None if first is None else f"{first.monitor}: {first.message}",
        verdicts=[v.as_dict() for v in summary], check_every=check_every, seed=seed,
    )
    logger.info("stability at %.0f K: %s", temperature_K, "stable" if result.stable else result.first_failure)
    return result
