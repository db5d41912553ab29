"""Errors of a model against reference labels: RMSE, MAE and tails, per element, config type and family.

The seeds insist (science.md §3, V2–V5, F2, F14) that errors be measured on frames of the model's own MD
(:func:`build_trajectory_test_set`), reported as RMSE with tails (95th/99th percentile, maximum) rather than
MAE alone, and with R², the parity slope and an offset-corrected energy RMSE so that a constant energy shift is
visible as such.

Units: energies in eV/atom, forces in eV/Å, stresses in GPa (ASE sign convention, positive = tensile).

Quantities
----------
``energy_per_atom``
    (E_model - E_ref) / N per frame (eV/atom).
``force_component``
    Every Cartesian force component (eV/Å).
``force_vector``
    |F_model - F_ref| per atom: the length of the error vector (eV/Å).
``force_magnitude``
    |F_model| - |F_ref| per atom: the error of the force's length (eV/Å).
``stress``
    The six Voigt components of frames that have a reference stress (GPa).

Forces are resolved per element; energies and stresses (properties of a whole frame) per config type and
per structure family only.
"""

# Names carry their unit as in ASE's ``temperature_K`` (``D_cm2_s``, ``Ea_eV``): keep the capitals.
# ruff: noqa: N803

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from pydantic import BaseModel, Field

from mlipflow.data import LabeledFrame, Provenance
from mlipflow.errors import DataError

logger = logging.getLogger(__name__)

QUANTITIES = ("energy_per_atom", "force_component", "force_vector", "force_magnitude", "stress")
UNITS = {
    "energy_per_atom": "eV/atom",
    "force_component": "eV/Å",
    "force_vector": "eV/Å",
    "force_magnitude": "eV/Å",
    "stress": "GPa",
}


class ErrorStats(BaseModel):
    """Statistics of one error sample (units of the quantity, see :data:`UNITS`).

    Parameters
    ----------
    n
        Number of values.
    rmse, mae
        Root-mean-square and mean absolute error.
    mean
        Mean signed error (bias; model minus reference).
    p95, p99, max
        95th and 99th percentiles and maximum of the absolute error.
    r2
        Coefficient of determination of model against reference (``None`` for signed-norm quantities).
    slope
        Slope of the least-squares line of model against reference (parity slope).
    rmse_offset_corrected
        RMSE after removing the mean error (energy offset diagnostic, F14).
    """

    n: int
    rmse: float
    mae: float
    mean: float
    p95: float
    p99: float
    max: float
    r2: float | None = None
    slope: float | None = None
    rmse_offset_corrected: float


def error_stats(pred: np.ndarray, ref: np.ndarray | None = None, *, diff: np.ndarray | None = None) -> ErrorStats:
    """Statistics of ``pred - ref`` (or of ``diff`` when the error is not a plain difference).

    Parameters
    ----------
    pred, ref
        Model and reference values, same shape (any unit).
    diff
        Precomputed errors (then ``pred``/``ref`` are only used for R² and slope if both are given).
    """
    pred = np.asarray(pred, dtype=float).ravel()
    d = (pred - np.asarray(ref, dtype=float).ravel()) if diff is None else np.asarray(diff, dtype=float).ravel()
    if d.size == 0:
        raise DataError("no values to compute errors from")
    ad = np.abs(d)
    r2 = slope = None
    if ref is not None and diff is None:
        r = np.asarray(ref, dtype=float).ravel()
        ss_tot = float(np.sum((r - r.mean()) ** 2))
        r2 = 1.0 - float(np.sum(d**2)) / ss_tot if ss_tot > 0 else None
        slope = float(np.polyfit(r, pred, 1)[0]) if ss_tot > 0 and r.size > 1 else None
    return ErrorStats(
        n=int(d.size),
        rmse=float(np.sqrt(np.mean(d**2))),
        mae=float(ad.mean()),
        mean=float(d.mean()),
        p95=float(np.percentile(ad, 95)),
        p99=float(np.percentile(ad, 99)),
        max=float(ad.max()),
        r2=r2,
        slope=slope,
        rmse_offset_corrected=float(np.std(d)),
    )


@dataclass
class ErrorSamples:
    """Paired model/reference values of a set of frames (the raw material of tables and parity plots).

    Attributes
    ----------
    e_ref, e_pred
        Energies per atom (eV/atom), one per frame.
    frame_config_type, frame_family
        Config type and structure family of each frame.
    f_ref, f_pred
        Forces (n_atoms_total, 3) in eV/Å.
    atom_element, atom_frame
        Element symbol and frame index of every atom.
    s_ref, s_pred
        Voigt stresses (n_frames_with_stress, 6) in GPa; ``s_frame`` their frame indices.
    """

    e_ref: np.ndarray
    e_pred: np.ndarray
    frame_config_type: list[str]
    frame_family: list[str]
    f_ref: np.ndarray
    f_pred: np.ndarray
    atom_element: np.ndarray
    atom_frame: np.ndarray
    s_ref: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    s_pred: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    s_frame: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def n_frames(self) -> int:
        return len(self.e_ref)

    def subset(self, frames: np.ndarray) -> ErrorSamples:
        """The samples of the frames whose indices are in ``frames``."""
        frames = np.asarray(frames, dtype=int)
        keep_atoms = np.isin(self.atom_frame, frames)
        keep_stress = np.isin(self.s_frame, frames)
        return ErrorSamples(
            e_ref=self.e_ref[frames],
            e_pred=self.e_pred[frames],
            frame_config_type=[self.frame_config_type[i] for i in frames],
            frame_family=[self.frame_family[i] for i in frames],
            f_ref=self.f_ref[keep_atoms],
            f_pred=self.f_pred[keep_atoms],
            atom_element=self.atom_element[keep_atoms],
            atom_frame=self.atom_frame[keep_atoms],
            s_ref=self.s_ref[keep_stress],
            s_pred=self.s_pred[keep_stress],
            s_frame=self.s_frame[keep_stress],
        )


class ErrorReport(BaseModel):
    """Errors of a model on a set of frames.

    Parameters
    ----------
    model
        What was evaluated (model id or calculator name).
    reference
        The labeler of the reference labels, as :meth:`LabelerInfo.describe` writes it (e.g.
        ``lj 3.29.0 (surrogate)``): a surrogate reference is never shown as DFT.
    test_set
        What the frames are (``held-out test split of <version>``, ``MLMD frames at 600 K``...).
    overall
        quantity -> :class:`ErrorStats`.
    by_element
        element -> force quantities -> stats.
    by_config_type, by_family
        group -> quantity -> stats.
    worst_frames
        Indices of the frames with the largest absolute energy error (outlier inspection, F2).
    units
        quantity -> unit.
    """

    model: str
    reference: str
    test_set: str = ""
    n_frames: int
    n_atoms: int
    overall: dict[str, ErrorStats]
    by_element: dict[str, dict[str, ErrorStats]] = Field(default_factory=dict)
    by_config_type: dict[str, dict[str, ErrorStats]] = Field(default_factory=dict)
    by_family: dict[str, dict[str, ErrorStats]] = Field(default_factory=dict)
    worst_frames: list[int] = Field(default_factory=list)
    units: dict[str, str] = Field(default_factory=lambda: dict(UNITS))


def _force_stats(f_pred: np.ndarray, f_ref: np.ndarray) -> dict[str, ErrorStats]:
    return {
        "force_component": error_stats(f_pred, f_ref),
        "force_vector": error_stats(np.linalg.norm(f_pred, axis=1), diff=np.linalg.norm(f_pred - f_ref, axis=1)),
        "force_magnitude": error_stats(np.linalg.norm(f_pred, axis=1), np.linalg.norm(f_ref, axis=1)),
    }


def _all_stats(s: ErrorSamples) -> dict[str, ErrorStats]:
    out = {"energy_per_atom": error_stats(s.e_pred, s.e_ref), **_force_stats(s.f_pred, s.f_ref)}
    if len(s.s_ref):
        out["stress"] = error_stats(s.s_pred, s.s_ref)
    return out


def compute_errors(
    samples: ErrorSamples, *, model: str, reference: str, test_set: str = "", n_worst: int = 5
) -> ErrorReport:
    """Tables of errors from paired samples (see :class:`ErrorReport`)."""
    if samples.n_frames == 0:
        raise DataError(f"no frames to compute errors of model {model!r} against {reference!r}")
    by_element = {
        el: _force_stats(samples.f_pred[samples.atom_element == el], samples.f_ref[samples.atom_element == el])
        for el in sorted(set(samples.atom_element.tolist()))
    }

    def grouped(labels: list[str]) -> dict[str, dict[str, ErrorStats]]:
        arr = np.asarray(labels)
        return {g: _all_stats(samples.subset(np.flatnonzero(arr == g))) for g in sorted(set(labels))}

    worst = np.argsort(-np.abs(samples.e_pred - samples.e_ref))[:n_worst]
    return ErrorReport(
        model=model,
        reference=reference,
        test_set=test_set,
        n_frames=samples.n_frames,
        n_atoms=len(samples.atom_element),
        overall=_all_stats(samples),
        by_element=by_element,
        by_config_type=grouped(samples.frame_config_type),
        by_family=grouped(samples.frame_family),
        worst_frames=[int(i) for i in worst],
    )


def _voigt_gpa(stress: Any) -> np.ndarray:
    s = np.asarray(stress, dtype=float)
    if s.shape == (3, 3):
        s = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    return s


def predict(frames: Sequence[LabeledFrame], calculator: Calculator, *, stress: bool = True) -> ErrorSamples:
    """Evaluate ``calculator`` on labeled frames and pair its predictions with the labels.

    Parameters
    ----------
    frames
        Labeled frames (energy eV, forces eV/Å, stress GPa).
    calculator
        Any ASE calculator (a MACE model, a committee, a baseline).
    stress
        Also compare stresses of frames that have a reference stress.
    """
    e_ref, e_pred, ctypes, families = [], [], [], []
    f_ref, f_pred, elements, atom_frame = [], [], [], []
    s_ref, s_pred, s_frame = [], [], []
    for i, frame in enumerate(frames):
        if frame.energy is None or frame.forces is None:
            raise DataError(f"frame {i} ({frame.structure.formula}) has no reference label (status {frame.status})")
        atoms = frame.to_atoms()
        atoms.calc = calculator
        n = len(atoms)
        e_ref.append(frame.energy / n)
        e_pred.append(float(atoms.get_potential_energy()) / n)
        f_ref.append(np.asarray(frame.forces, dtype=float))
        f_pred.append(np.asarray(atoms.get_forces(), dtype=float))
        elements += atoms.get_chemical_symbols()
        atom_frame += [i] * n
        ctypes.append(frame.config_type)
        families.append(frame.provenance.family or "unknown")
        if stress and frame.stress is not None:
            s_ref.append(_voigt_gpa(frame.stress))
            s_pred.append(np.asarray(atoms.get_stress(voigt=True), dtype=float) / units.GPa)
            s_frame.append(i)
    return ErrorSamples(
        e_ref=np.asarray(e_ref),
        e_pred=np.asarray(e_pred),
        frame_config_type=ctypes,
        frame_family=families,
        f_ref=np.concatenate(f_ref) if f_ref else np.zeros((0, 3)),
        f_pred=np.concatenate(f_pred) if f_pred else np.zeros((0, 3)),
        atom_element=np.asarray(elements),
        atom_frame=np.asarray(atom_frame, dtype=int),
        s_ref=np.asarray(s_ref).reshape(-1, 6),
        s_pred=np.asarray(s_pred).reshape(-1, 6),
        s_frame=np.asarray(s_frame, dtype=int),
    )


def _reference_of(frames: Sequence[LabeledFrame]) -> str:
    labelers = sorted({f.labeler.describe() for f in frames})
    return ", ".join(labelers) if labelers else "none"


def evaluate_frames(
    frames: Sequence[LabeledFrame], calculator: Calculator, *, model: str, test_set: str = ""
) -> tuple[ErrorReport, ErrorSamples]:
    """Errors of ``calculator`` on ``frames``; the reference named from the frames' labelers."""
    samples = predict(frames, calculator)
    return compute_errors(samples, model=model, reference=_reference_of(frames), test_set=test_set), samples


def held_out_errors(
    stores: Any, version_id: str, calculator: Calculator, *, model: str, split: str = "test"
) -> tuple[ErrorReport, ErrorSamples]:
    """Errors on one split of a dataset version (default the held-out ``test`` split)."""
    from mlipflow.data import Dataset

    frames = [f for f, _ in Dataset(stores).version_frames(version_id, split)]  # type: ignore[arg-type]
    if not frames:
        raise DataError(f"dataset version {version_id!r} has no frames in split {split!r}")
    return evaluate_frames(frames, calculator, model=model, test_set=f"{split} split of {version_id}")


# --------------------------------------------------------------------------------- trajectory test set
def run_md(
    atoms: Atoms,
    calculator: Calculator,
    *,
    temperature_K: float,
    n_steps: int,
    timestep_fs: float = 1.0,
    friction_per_fs: float = 0.01,
    sample_every: int = 10,
    seed: int = 0,
    callback: Callable[[Atoms, int], None] | None = None,
) -> list[Atoms]:
    """Langevin NVT MD with ``calculator``; returns snapshots (positions, momenta) every ``sample_every`` steps.

    Parameters
    ----------
    atoms
        Starting structure (copied, not modified).
    temperature_K
        Thermostat temperature (K); initial velocities Maxwell–Boltzmann at this temperature.
    n_steps
        Number of MD steps.
    timestep_fs
        Time step (fs).
    friction_per_fs
        Langevin friction (1/fs).
    sample_every
        Keep a snapshot every this many steps (the first snapshot is step ``sample_every``).
    seed
        Seed of the velocities and the thermostat noise.
    callback
        Called as ``callback(atoms, step)`` after every step (monitors).
    """
    from ase.constraints import FixCom
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    from mlipflow.sampling.md import MDSettings, TemperatureSchedule, make_dynamics

    rng = np.random.default_rng(seed)
    work = atoms.copy()
    work.calc = calculator
    MaxwellBoltzmannDistribution(work, temperature_K=temperature_K, rng=rng)
    Stationary(work)
    work.set_constraint([*work.constraints, FixCom()])  # ase >= 3.28: FixCom instead of Langevin's fixcm
    settings = MDSettings(ensemble="nvt_langevin", timestep=timestep_fs, friction=friction_per_fs)
    dyn = make_dynamics(work, settings, temperature_K, TemperatureSchedule.constant(temperature_K), rng)
    snapshots: list[Atoms] = []
    for step in range(1, n_steps + 1):
        dyn.run(1)
        if callback is not None:
            callback(work, step)
        if step % sample_every == 0:
            snap = work.copy()
            snap.set_constraint(atoms.constraints)
            snap.calc = None
            snap.info["md_step"] = step
            snap.info["time_fs"] = step * timestep_fs
            snapshots.append(snap)
    return snapshots


def build_trajectory_test_set(
    atoms: Atoms,
    model_calculator: Calculator,
    reference: Any,
    *,
    temperature_K: float,
    n_steps: int,
    timestep_fs: float = 1.0,
    sample_every: int = 10,
    seed: int = 0,
    config_type: str = "mlmd",
    family: str | None = None,
) -> list[LabeledFrame]:
    """Frames from the model's own MD, labeled by the reference: the true test set (V2).

    Parameters
    ----------
    atoms
        Starting structure.
    model_calculator
        The model under test, as an ASE calculator: it drives the MD.
    reference
        A :class:`mlipflow.labeling.base.Labeler` (DFT or surrogate): its :meth:`label_one` labels each snapshot
        and its ``info`` is kept in every frame.
    temperature_K, n_steps, timestep_fs, sample_every, seed
        MD settings (K, steps, fs, steps, seed), see :func:`run_md`.
    config_type, family
        Provenance of the frames (family defaults to ``config_type``).
    """
    from pymatgen.io.ase import AseAtomsAdaptor

    snapshots = run_md(
        atoms, model_calculator, temperature_K=temperature_K, n_steps=n_steps, timestep_fs=timestep_fs,
        sample_every=sample_every, seed=seed,
    )
    if hasattr(reference, "setup"):
        reference.setup()
    frames = []
    for snap in snapshots:
        structure = AseAtomsAdaptor.get_structure(snap)
        result = reference.label_one(structure)
        provenance = Provenance(
            origin="benchmark-mlmd", family=family or config_type, config_type=config_type,
            temperature=temperature_K, md_step=int(snap.info["md_step"]),
        )
        frames.append(
            LabeledFrame.from_atoms(
                snap, reference.info, energy=result.energy, forces=result.forces, stress=result.stress,
                provenance=provenance,
            )
        )
    logger.info("trajectory test set: %d frames at %.0f K labeled by %s", len(frames), temperature_K,
                reference.info.describe())
    return frames


def trajectory_errors(
    atoms: Atoms,
    model_calculator: Calculator,
    reference: Any,
    *,
    model: str,
    temperature_K: float,
    n_steps: int,
    timestep_fs: float = 1.0,
    sample_every: int = 10,
    seed: int = 0,
    config_type: str = "mlmd",
) -> tuple[ErrorReport, ErrorSamples, list[LabeledFrame]]:
    """Build the trajectory test set (:func:`build_trajectory_test_set`) and the model's errors on it."""
    frames = build_trajectory_test_set(
        atoms, model_calculator, reference, temperature_K=temperature_K, n_steps=n_steps, timestep_fs=timestep_fs,
        sample_every=sample_every, seed=seed, config_type=config_type,
    )
    report, samples = evaluate_frames(
        frames, model_calculator, model=model,
        test_set=f"{len(frames)} frames of the model's MD at {temperature_K:g} K (every {sample_every} steps)",
    )
    return report, samples, frames


# ----------------------------------------------------------------------------------------------- plots
def plot_parity(samples: ErrorSamples, title: str = "") -> Any:
    """Parity plots (energy meV/atom... shown in eV/atom, force components eV/Å, stress GPa); a Figure."""
    from mlipflow.benchmark.plotting import new_figure

    panels = [("energy_per_atom", samples.e_ref, samples.e_pred), ("force_component", samples.f_ref, samples.f_pred)]
    if len(samples.s_ref):
        panels.append(("stress", samples.s_ref, samples.s_pred))
    fig, axes = new_figure(len(panels), width=4.0)
    for ax, (name, ref, pred) in zip(axes, panels, strict=True):
        ref, pred = np.ravel(ref), np.ravel(pred)
        ax.scatter(ref, pred, s=4, alpha=0.6)
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"reference {name} ({UNITS[name]})")
        ax.set_ylabel(f"model {name} ({UNITS[name]})")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_error_distribution(samples: ErrorSamples, title: str = "") -> Any:
    """Histograms of absolute errors (log counts) with the 95th/99th percentiles marked; a Figure."""
    from mlipflow.benchmark.plotting import new_figure

    data = [
        ("energy_per_atom", np.abs(samples.e_pred - samples.e_ref)),
        ("force_vector", np.linalg.norm(samples.f_pred - samples.f_ref, axis=1)),
    ]
    if len(samples.s_ref):
        data.append(("stress", np.abs(samples.s_pred - samples.s_ref).ravel()))
    fig, axes = new_figure(len(data), width=4.0)
    for ax, (name, err) in zip(axes, data, strict=True):
        ax.hist(err, bins=min(50, max(5, err.size // 3)), log=True)
        for q, style in ((95, ":"), (99, "--")):
            ax.axvline(np.percentile(err, q), color="r", ls=style, label=f"p{q}")
        ax.set_xlabel(f"|error| {name} ({UNITS[name]})")
        ax.set_ylabel("count")
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
