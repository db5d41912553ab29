"""jobflow Makers of the benchmarks: each property is a function (in its module) plus a Maker here.

Makers are small dataclasses with a ``name`` and ``make()``; the model is named by a spec string
(:func:`mlipflow.benchmark.baselines.calculator_from_spec`) so that it crosses job boundaries; structures travel as
pymatgen ``Structure``.  Every job returns a small document (``summary`` with units in its keys, plus the
result) and, when ``subject`` is set, also stores it in the ``benchmarks`` collection for the report.
"""

# Names carry their unit as in ASE's ``temperature_K`` (``D_cm2_s``, ``Ea_eV``): keep the capitals.
# ruff: noqa: N803, N815

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jobflow import Flow, Maker, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.benchmark.baselines import calculator_from_spec


def _atoms(structure: Structure) -> Any:
    return AseAtomsAdaptor.get_atoms(structure)


def _record(subject: str | None, kind: str, model: str, reference: str, summary: dict[str, Any], result: Any,
            plots: dict[str, Any] | None = None, note: str = "") -> dict[str, Any]:
    from mlipflow.benchmark.plotting import figure_to_base64

    encoded = {k: figure_to_base64(v) for k, v in (plots or {}).items()}
    if subject:
        from mlipflow.benchmark.results import save_result
        from mlipflow.storage import get_stores

        save_result(get_stores(), subject=subject, kind=kind, model=model, reference=reference, summary=summary,
                    result=result, plots=encoded, note=note)
    return {"kind": kind, "model": model, "reference": reference, "summary": summary,
            "result": result.model_dump(mode="json") if hasattr(result, "model_dump") else result}


# ------------------------------------------------------------------------------------------- errors
@job
def held_out_errors_job(model: str, dataset_version: str, split: str = "test", subject: str | None = None
                        ) -> dict[str, Any]:
    """Errors of ``model`` on one split of a dataset version."""
    from mlipflow.benchmark.errors import held_out_errors, plot_error_distribution, plot_parity
    from mlipflow.storage import get_stores

    report, samples = held_out_errors(get_stores(), dataset_version, calculator_from_spec(model), model=model,
                                      split=split)
    o = report.overall
    summary = {"rmse_e_meV_atom": 1e3 * o["energy_per_atom"].rmse, "rmse_f_meV_A": 1e3 * o["force_component"].rmse}
    return _record(subject, "errors", model, report.reference, summary, report,
                   {"parity": plot_parity(samples), "error distribution": plot_error_distribution(samples)})


@dataclass
class HeldOutErrorsMaker(Maker):
    """Errors on a held-out split of a dataset version.

    Parameters
    ----------
    model
        Model spec.
    split
        ``test`` (default), ``valid`` or ``train``.
    subject
        Report name to record the result under (``None``: not recorded).
    """

    name: str = "held-out errors"
    model: str = ""
    split: str = "test"
    subject: str | None = None

    def make(self, dataset_version: str) -> Any:
        j = held_out_errors_job(self.model, dataset_version, self.split, self.subject)
        j.name = self.name
        return j


@job
def trajectory_errors_job(structure: Structure, model: str, reference: Any, temperature_K: float, n_steps: int,
                          timestep_fs: float, sample_every: int, seed: int, subject: str | None = None
                          ) -> dict[str, Any]:
    """Errors on frames of the model's own MD labeled by the reference labeler (V2)."""
    from mlipflow.benchmark.errors import plot_error_distribution, plot_parity, trajectory_errors

    report, samples, _ = trajectory_errors(
        _atoms(structure), calculator_from_spec(model), reference, model=model, temperature_K=temperature_K,
        n_steps=n_steps, timestep_fs=timestep_fs, sample_every=sample_every, seed=seed,
    )
    o = report.overall
    summary = {"T_K": temperature_K, "frames": report.n_frames, "rmse_e_meV_atom": 1e3 * o["energy_per_atom"].rmse,
               "rmse_f_meV_A": 1e3 * o["force_component"].rmse}
    return _record(subject, "errors", model, report.reference, summary, report,
                   {"parity": plot_parity(samples), "error distribution": plot_error_distribution(samples)})


@dataclass
class TrajectoryErrorsMaker(Maker):
    """The trajectory test set: MD with the model, snapshots labeled by ``reference`` (a Labeler), errors.

    Parameters
    ----------
    model
        Model spec.
    reference
        A :class:`mlipflow.labeling.base.Labeler` (serialisable).
    temperature_K, n_steps, timestep_fs, sample_every, seed
        MD settings (K, steps, fs, steps, seed).
    """

    name: str = "trajectory errors"
    model: str = ""
    reference: Any = None
    temperature_K: float = 600.0
    n_steps: int = 1000
    timestep_fs: float = 1.0
    sample_every: int = 100
    seed: int = 0
    subject: str | None = None

    def make(self, structure: Structure) -> Any:
        j = trajectory_errors_job(structure, self.model, self.reference, self.temperature_K, self.n_steps,
                                  self.timestep_fs, self.sample_every, self.seed, self.subject)
        j.name = self.name
        return j


# ---------------------------------------------------------------------------------------- mechanics
@job
def eos_job(structure: Structure, model: str, relax_first: bool = True, subject: str | None = None,
            reference: str = "none") -> dict[str, Any]:
    """Relax (optional), then EOS: lattice parameters (Å) and bulk modulus (GPa)."""
    from mlipflow.benchmark.mechanics import equation_of_state, plot_eos, relax

    calc = calculator_from_spec(model)
    atoms = _atoms(structure)
    if relax_first:
        atoms = relax(atoms, calc)
    res = equation_of_state(atoms, calc)
    summary = {"a_A": res.lattice_abc[0], "b_A": res.lattice_abc[1], "c_A": res.lattice_abc[2],
               "V0_A3_atom": res.v0 / res.n_atoms, "B_GPa": res.bulk_modulus_GPa}
    return _record(subject, "eos", model, reference, summary, res, {"EOS": plot_eos({model: res})})


@dataclass
class EOSMaker(Maker):
    """Equation of state (and relaxed lattice) of a structure with a model."""

    name: str = "eos"
    model: str = ""
    relax_first: bool = True
    subject: str | None = None

    def make(self, structure: Structure) -> Any:
        j = eos_job(structure, self.model, self.relax_first, self.subject)
        j.name = self.name
        return j


@job
def elastic_job(structure: Structure, model: str, relax_first: bool = True, relax_ions: bool = True,
                subject: str | None = None, reference: str = "none") -> dict[str, Any]:
    """Elastic constants (GPa) by finite strain."""
    from mlipflow.benchmark.mechanics import elastic_constants, relax

    calc = calculator_from_spec(model)
    atoms = _atoms(structure)
    if relax_first:
        atoms = relax(atoms, calc)
    res = elastic_constants(atoms, calc, relax_ions=relax_ions)
    c = np.asarray(res.C_GPa)
    summary = {"C11_GPa": c[0, 0], "C12_GPa": c[0, 1], "C44_GPa": c[3, 3], "K_VRH_GPa": res.bulk_modulus_vrh_GPa,
               "G_VRH_GPa": res.shear_modulus_vrh_GPa}
    return _record(subject, "elastic", model, reference, summary, res)


@dataclass
class ElasticMaker(Maker):
    """Elastic constants by finite strain with a model."""

    name: str = "elastic"
    model: str = ""
    relax_first: bool = True
    relax_ions: bool = True
    subject: str | None = None

    def make(self, structure: Structure) -> Any:
        j = elastic_job(structure, self.model, self.relax_first, self.relax_ions, self.subject)
        j.name = self.name
        return j


# ----------------------------------------------------------------------------------- MD properties
@job(data="positions")
def md_properties_job(structure: Structure, model: str, temperature_K: float, n_steps: int, timestep_fs: float,
                      sample_every: int, seed: int, rdf_rmax: float = 6.0, adf_cutoff: float = 3.0,
                      species: str = "Li", subject: str | None = None) -> dict[str, Any]:
    """MD with the model, then RDF, ADF, vDOS and the diffusivity of ``species`` (block-averaged)."""
    from mlipflow.benchmark.dynamics import (
        diffusivity,
        plot_vdos,
        species_groups,
        unwrap_positions,
        vdos,
        velocities_from_images,
    )
    from mlipflow.benchmark.errors import run_md
    from mlipflow.benchmark.structure import adf, first_peak, plot_distributions, rdf

    frames = run_md(_atoms(structure), calculator_from_spec(model), temperature_K=temperature_K, n_steps=n_steps,
                    timestep_fs=timestep_fs, sample_every=sample_every, seed=seed)
    dt = sample_every * timestep_fs
    r = rdf(frames, rmax=rdf_rmax)
    a = adf(frames, cutoff=adf_cutoff)
    v = vdos(velocities_from_images(frames), dt, frames[0].get_chemical_symbols())
    pos = unwrap_positions(frames)
    groups = {k: g for k, g in species_groups(frames[0]).items() if k == species}
    diff = diffusivity(pos, dt, groups, n_blocks=4, temperature_K=temperature_K) if groups else {}
    out = {
        "rdf": _record(subject, "rdf", model, "none",
                       {f"first_peak_{k}_A": first_peak(r.x, y) for k, y in r.curves.items()}, r,
                       {"RDF": plot_distributions({model: r})}),
        "adf": _record(subject, "adf", model, "none",
                       {f"first_peak_{k}_deg": first_peak(a.x, y) for k, y in a.curves.items()}, a),
        "vdos": _record(subject, "vdos", model, "none", {f"peak_{k}_cm1": p for k, p in v.peak_cm1.items()}, v,
                        {"vDOS": plot_vdos({model: v})}),
    }
    for g, d in diff.items():
        out[f"diffusion_{g}"] = _record(subject, "diffusion", model, "none",
                                        {"T_K": temperature_K, f"D_{g}_cm2_s": d.D_cm2_s,
                                         f"D_{g}_err_cm2_s": d.D_err_cm2_s, "fit_window_fs": list(d.fit_window_fs)},
                                        d, note=d.error_from)
    out["positions"] = pos.tolist()
    return out


@dataclass
class MDPropertiesMaker(Maker):
    """RDF, ADF, vDOS and diffusivity from one MD run of the model (NVT Langevin).

    Parameters
    ----------
    model
        Model spec.
    temperature_K, n_steps, timestep_fs, sample_every, seed
        MD settings (K, steps, fs, steps, seed); frames every ``sample_every`` steps feed all analyses.
    species
        Diffusing species (default ``Li``).
    """

    name: str = "md properties"
    model: str = ""
    temperature_K: float = 600.0
    n_steps: int = 2000
    timestep_fs: float = 1.0
    sample_every: int = 5
    seed: int = 0
    species: str = "Li"
    subject: str | None = None

    def make(self, structure: Structure) -> Any:
        j = md_properties_job(structure, self.model, self.temperature_K, self.n_steps, self.timestep_fs,
                              self.sample_every, self.seed, species=self.species, subject=self.subject)
        j.name = self.name
        return j


@job
def diffusion_run_job(structure: Structure, model: str, temperature_K: float, n_steps: int, timestep_fs: float,
                      sample_every: int, seed: int, species: str) -> dict[str, Any]:
    """One MD run at ``temperature_K``: D of ``species`` (cm²/s) and its fit window."""
    from mlipflow.benchmark.dynamics import diffusivity, species_groups, unwrap_positions
    from mlipflow.benchmark.errors import run_md

    frames = run_md(_atoms(structure), calculator_from_spec(model), temperature_K=temperature_K, n_steps=n_steps,
                    timestep_fs=timestep_fs, sample_every=sample_every, seed=seed)
    groups = {species: species_groups(frames[0])[species]}
    d = diffusivity(unwrap_positions(frames), sample_every * timestep_fs, groups, temperature_K=temperature_K)
    return {"temperature_K": temperature_K, "D_cm2_s": d[species].D_cm2_s, "fit_window_fs": d[species].fit_window_fs,
            "seed": seed}


@job
def arrhenius_job(runs: list[dict[str, Any]], model: str, species: str, n_ions: int, volume_A3: float,
                  haven_ratio: float = 1.0, subject: str | None = None) -> dict[str, Any]:
    """Mean D per temperature with its standard error over runs, the Arrhenius fit and σ(300 K)."""
    from mlipflow.benchmark.dynamics import arrhenius_fit, nernst_einstein_conductivity, plot_arrhenius

    temps = sorted({r["temperature_K"] for r in runs})
    means, errs = [], []
    for t in temps:
        ds = np.array([r["D_cm2_s"] for r in runs if r["temperature_K"] == t])
        means.append(float(ds.mean()))
        errs.append(float(ds.std(ddof=1) / np.sqrt(ds.size)) if ds.size > 1 else None)
    fit = arrhenius_fit(temps, means, errs if all(e for e in errs) else None)
    sigma = nernst_einstein_conductivity(fit.D300_cm2_s, n_ions=n_ions, volume_A3=volume_A3, temperature_K=300.0,
                                         haven_ratio=haven_ratio)
    summary = {"Ea_eV": fit.Ea_eV, "Ea_err_eV": fit.Ea_err_eV, "D300_cm2_s": fit.D300_cm2_s,
               "sigma300_S_cm": sigma, "haven_ratio": haven_ratio, "runs_per_T": len(runs) // max(len(temps), 1)}
    return _record(subject, "arrhenius", model, "none", summary, fit, {"Arrhenius": plot_arrhenius({model: fit})},
                   note=f"{species}; Nernst–Einstein with Haven ratio {haven_ratio}")


@dataclass
class ArrheniusMaker(Maker):
    """Li diffusivity at several temperatures (independent runs each), Arrhenius fit, conductivity at 300 K.

    Parameters
    ----------
    model
        Model spec.
    temperatures_K
        Temperatures (K); fit at high T only (science.md V12: T >= 800 K) and extrapolate to 300 K.
    n_runs
        Independent runs (seeds) per temperature: the error bar.
    n_steps, timestep_fs, sample_every, seed
        MD settings (steps, fs, steps, base seed).
    species
        Diffusing species.
    haven_ratio
        Haven ratio of the Nernst–Einstein conductivity (state it; 1 = uncorrelated).
    """

    name: str = "arrhenius"
    model: str = ""
    temperatures_K: tuple[float, ...] = (800.0, 1000.0, 1200.0)
    n_runs: int = 3
    n_steps: int = 5000
    timestep_fs: float = 1.0
    sample_every: int = 10
    seed: int = 0
    species: str = "Li"
    haven_ratio: float = 1.0
    subject: str | None = None

    def make(self, structure: Structure) -> Flow:
        runs = [
            diffusion_run_job(structure, self.model, t, self.n_steps, self.timestep_fs, self.sample_every,
                              self.seed + 1000 * i + k, self.species)
            for i, t in enumerate(self.temperatures_K) for k in range(self.n_runs)
        ]
        n_ions = sum(1 for s in structure if s.specie.symbol == self.species)
        fit = arrhenius_job([r.output for r in runs], self.model, self.species, n_ions, structure.volume,
                            self.haven_ratio, self.subject)
        return Flow([*runs, fit], output=fit.output, name=self.name)


# ------------------------------------------------------------------------------- stability and speed
@job
def stability_job(structure: Structure, model: str, temperature_K: float, n_steps: int, timestep_fs: float,
                  check_every: int, seed: int, subject: str | None = None) -> dict[str, Any]:
    """Long MD with the sampling monitors; verdict and time to first failure (ps)."""
    from mlipflow.benchmark.stability import run_stability

    res = run_stability(_atoms(structure), calculator_from_spec(model), temperature_K=temperature_K, n_steps=n_steps,
                        timestep_fs=timestep_fs, check_every=check_every, seed=seed)
    summary = {"T_K": temperature_K, "stable": res.stable, "time_ps": res.steps_run * timestep_fs / 1000,
               "time_to_failure_ps": res.time_to_failure_ps, "first_failure": res.first_failure}
    return _record(subject, "stability", model, "none", summary, res)


@dataclass
class StabilityMaker(Maker):
    """Long MD at stated temperatures with the stability monitors."""

    name: str = "stability"
    model: str = ""
    temperatures_K: tuple[float, ...] = (300.0, 800.0)
    n_steps: int = 10000
    timestep_fs: float = 1.0
    check_every: int = 20
    seed: int = 0
    subject: str | None = None

    def make(self, structure: Structure) -> Flow:
        jobs = [stability_job(structure, self.model, t, self.n_steps, self.timestep_fs, self.check_every,
                              self.seed + i, self.subject) for i, t in enumerate(self.temperatures_K)]
        return Flow(jobs, output=[j.output for j in jobs], name=self.name)


@job
def speed_job(structure: Structure, model: str, sizes: list[int], n_steps: int, subject: str | None = None
              ) -> dict[str, Any]:
    """MD steps/s and ns/day at several atom counts."""
    from mlipflow.benchmark.speed import md_speed, plot_speed

    points = md_speed(_atoms(structure), calculator_from_spec(model), sizes=sizes, n_steps=n_steps)
    summary = {f"ns_day_{p.n_atoms}_atoms": p.ns_per_day for p in points}
    summary |= {f"steps_s_{p.n_atoms}_atoms": p.steps_per_s for p in points}
    return _record(subject, "speed", model, "none", summary, {"points": [p.model_dump() for p in points]},
                   {"speed": plot_speed({model: points})})


@dataclass
class SpeedMaker(Maker):
    """MD speed at several atom counts."""

    name: str = "speed"
    model: str = ""
    sizes: list[int] = field(default_factory=lambda: [64, 128, 256])
    n_steps: int = 10
    subject: str | None = None

    def make(self, structure: Structure) -> Any:
        j = speed_job(structure, self.model, list(self.sizes), self.n_steps, self.subject)
        j.name = self.name
        return j


# ---------------------------------------------------------------------------------------- energetics
@job
def surface_energy_job(slab: Structure, bulk: Structure, model: str, subject: str | None = None) -> dict[str, Any]:
    """Surface energy (J/m²) of a slab with two free surfaces (unrelaxed)."""
    from mlipflow.benchmark.energetics import surface_energy

    res = surface_energy(_atoms(slab), _atoms(bulk), calculator_from_spec(model))
    return _record(subject, "energetics", model, "none", {"surface_J_m2": res.value_J_m2}, res, note=res.definition)


@job
def grain_boundary_energy_job(bicrystal: Structure, bulk: Structure, model: str, n_boundaries: int = 2,
                              subject: str | None = None) -> dict[str, Any]:
    """GB energy (J/m²) of a periodic bicrystal (unrelaxed)."""
    from mlipflow.benchmark.energetics import grain_boundary_energy

    res = grain_boundary_energy(_atoms(bicrystal), _atoms(bulk), calculator_from_spec(model),
                                n_boundaries=n_boundaries)
    return _record(subject, "energetics", model, "none", {"gb_J_m2": res.value_J_m2}, res, note=res.definition)


@dataclass
class SurfaceEnergyMaker(Maker):
    """Surface energy of a slab against its bulk."""

    name: str = "surface energy"
    model: str = ""
    subject: str | None = None

    def make(self, slab: Structure, bulk: Structure) -> Any:
        j = surface_energy_job(slab, bulk, self.model, self.subject)
        j.name = self.name
        return j


@dataclass
class GrainBoundaryEnergyMaker(Maker):
    """Grain-boundary energy of a periodic bicrystal against its bulk."""

    name: str = "grain boundary energy"
    model: str = ""
    n_boundaries: int = 2
    subject: str | None = None

    def make(self, bicrystal: Structure, bulk: Structure) -> Any:
        j = grain_boundary_energy_job(bicrystal, bulk, self.model, self.n_boundaries, self.subject)
        j.name = self.name
        return j
