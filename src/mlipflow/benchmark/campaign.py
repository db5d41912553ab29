"""The benchmark of a campaign's final potential, against the campaign's own reference (the labeler).

Each part is a plain function here; :mod:`mlipflow.benchmark.flows` makes them jobs.  "The model" is the final
committee's first member: the potential a user exports and runs (its MD drives every test); the committee mean
is evaluated on the same frames.  All MD goes through :func:`mlipflow.sampling.md.run_walkers`, the loop that
exploration uses, with the sampling monitors.

* :func:`mlmd_test_set`: the model's own MD at every sampled temperature on every benchmark cell; frames after the
  equilibration are labeled by the reference through the label ledger (nothing is labeled twice on a rerun).
* :func:`test_set_errors`: RMSE, MAE, p95 and maximum per family and temperature, and for boundary cells for
  boundary atoms against the others (atoms whose SOAP environment differs from the bulk's,
  :func:`boundary_atoms`), for the model and the committee mean of *every* iteration on the same frames.
* :func:`reference_properties`: the model's MD next to each reference MD (same cell, temperature, time step,
  recording stride): RDF and ADF first peaks, and the Li MSD (the reference MD is short: the MSD at its longest
  lag is compared, and a diffusivity only where the MSD leaves the vibrational plateau).
* :func:`stability_runs`: long MD at the highest temperature with the monitors (stop reason, time).
* :func:`boundary_energies`: boundary energy after relaxation with the model and with the reference.
* :func:`verdict`: the targets against the figures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.benchmark.schemas import GBEnergy, ModelErrors, PropertyComparison, TestErrorsDoc, TestSetDoc, Verdict
from mlipflow.data import Dataset, Provenance
from mlipflow.labeling.base import Labeler
from mlipflow.sampling.md import MDSettings, run_walkers
from mlipflow.sampling.schemas import MDResult
from mlipflow.sampling.trajectory import TrajectoryStore
from mlipflow.sampling.uncertainty import CalculatorFactory
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)

MODEL_FACTORY = "mlipflow.training.committee:model_from_registry"
COMMITTEE_FACTORY = "mlipflow.training.committee:committee_from_registry"
#: the benchmark's MD starts from cells relaxed by the model (FIRE steps at most), as the exploration does
RELAX_STEPS = 50
#: RDF bin (Å) and the Gaussian smoothing (bins) of the curves before their first peaks are compared
RDF_BIN = 0.02
RDF_SMOOTH_BINS = 4.0
#: relative SOAP distance from the bulk environment above which an atom counts as a boundary atom
BOUNDARY_THRESHOLD = 0.05


def model_factory(model_id: str) -> CalculatorFactory:
    """Builds the registered model (a committee: its mean) inside a job or worker process."""
    return CalculatorFactory(MODEL_FACTORY, {"model_id": model_id})


def _group(family: str | None, temperature: float | None) -> str:
    return f"{family or 'unknown'} at {temperature:g} K" if temperature is not None else str(family or "unknown")


# ------------------------------------------------------------------------------------------------ test set
def test_set_frames(stores: Stores, model_id: str, structures: Sequence[Structure], temperatures: Sequence[float],
                    *, n_steps: int, every: int, equilibration: int, timestep: float = 1.0, seed: int = 0,
                    processes: int = 1, tags: dict[str, Any] | None = None) -> tuple[TestSetDoc, list[Structure]]:
    """The model's own MD on ``structures`` at ``temperatures``, and its frames after ``equilibration`` steps.

    The walkers use seeds ``seed + 10000 + k`` (never those of the exploration), so no test frame is an explored
    one.  The frames come back as structures with provenance ``origin="benchmark-mlmd"`` (grouped by trajectory)
    for the reference to label; they never enter a dataset version.
    """
    settings = MDSettings(n_steps=n_steps, record_every=every, timestep=timestep, seed=seed + 10000,
                          velocity_scale=2.0, relax_steps=RELAX_STEPS)
    walkers = run_walkers(list(structures), list(temperatures), model_factory(model_id), settings, stores=stores,
                          metadata={"kind": "benchmark-mlmd", **(tags or {})}, processes=processes)
    tstore = TrajectoryStore(stores)
    frames: list[Structure] = []
    counts: dict[str, int] = {}
    for w in walkers:
        if not w.trajectory_id:
            continue
        for atoms in tstore.iter_atoms(w.trajectory_id):
            step = int(atoms.info.get("step", 0))
            if step < max(equilibration, 1):
                continue
            atoms.calc = None
            structure = AseAtomsAdaptor.get_structure(atoms)
            for prop in list(structure.site_properties):
                structure.remove_site_property(prop)
            group = f"trajectory:{w.trajectory_id}"
            structure.properties = {"provenance": Provenance(
                origin="benchmark-mlmd", family=w.family, temperature=w.temperature, md_step=step, parent=group,
                group=group, generator="benchmark", source=w.trajectory_id, **(tags or {})).model_dump(
                    exclude_none=True)}
            frames.append(structure)
            key = _group(w.family, w.temperature)
            counts[key] = counts.get(key, 0) + 1
    doc = TestSetDoc(model_id=model_id, trajectory_ids=[w.trajectory_id for w in walkers if w.trajectory_id],
                     walkers=[{"family": w.family, "temperature": w.temperature, "stop_reason": w.stop_reason,
                               "n_frames": w.n_frames} for w in walkers], counts=counts)
    return doc, frames


def mlmd_test_set(stores: Stores, model_id: str, structures: Sequence[Structure], temperatures: Sequence[float],
                  labeler: Labeler, **kwargs: Any) -> TestSetDoc:
    """:func:`test_set_frames`, labeled by ``labeler`` through the ledger (in this process)."""
    from mlipflow.labeling.jobs import label_structures

    doc, frames = test_set_frames(stores, model_id, structures, temperatures, **kwargs)
    summary = label_structures(frames, labeler, stores=stores)
    labeled = {d["_id"] for d in stores.frames.find({"_id": {"$in": summary.frame_ids}, "status": "labeled"},
                                                    {"_id": 1})}
    doc.frame_ids = [f for f in summary.frame_ids if f in labeled]
    doc.labeler = labeler.info.describe()
    return doc


# ------------------------------------------------------------------------------------------------ errors
def boundary_atoms(atoms: Atoms, bulk: Atoms, *, r_cut: float = 4.0,
                   threshold: float = BOUNDARY_THRESHOLD) -> np.ndarray:
    """Mask of the atoms whose local environment differs from the bulk's (relative SOAP distance > threshold).

    Parameters
    ----------
    atoms
        A boundary (or interface, slab) cell, ideally its starting, unrelaxed structure.
    bulk
        A bulk cell of the same material (its atoms are the reference environments, one per species).
    r_cut
        SOAP cutoff (Å).
    threshold
        Relative distance ``|p_i - p_bulk| / |p_bulk|`` of the atom's SOAP power spectrum from its species' bulk one.
    """
    from dscribe.descriptors import SOAP

    species = sorted(set(atoms.get_chemical_symbols()) | set(bulk.get_chemical_symbols()))
    soap = SOAP(species=species, r_cut=r_cut, n_max=4, l_max=3, periodic=True)
    x, xb = soap.create(atoms), soap.create(bulk)
    sym, symb = np.asarray(atoms.get_chemical_symbols()), np.asarray(bulk.get_chemical_symbols())
    mask = np.ones(len(atoms), dtype=bool)
    for sp in species:
        if not np.any(symb == sp):
            continue
        ref = xb[symb == sp].mean(axis=0)
        rows = sym == sp
        mask[rows] = np.linalg.norm(x[rows] - ref, axis=1) / max(np.linalg.norm(ref), 1e-12) > threshold
    return mask


def _stats(diff: np.ndarray) -> dict[str, float]:
    ad = np.abs(diff).ravel()
    return {"rmse_f_meV_A": 1e3 * float(np.sqrt(np.mean(ad**2))), "mae_f_meV_A": 1e3 * float(ad.mean()),
            "p95_f_meV_A": 1e3 * float(np.percentile(ad, 95)), "max_f_meV_A": 1e3 * float(ad.max()), "n": int(ad.size)}


def test_set_errors(stores: Stores, test_set: TestSetDoc, models: Sequence[tuple[int | None, str, str]],
                    bulk: Atoms | None = None) -> TestErrorsDoc:
    """Errors of each ``(iteration, model id, kind)`` on the test set (kind ``member`` or ``committee``).

    Forces per component (meV/Å), energies per atom (meV/atom); grouped by family and temperature, and for
    boundary cells (``bulk`` given) by boundary atoms and the other atoms.
    """
    from mlipflow.benchmark.baselines import calculator_from_spec

    dataset = Dataset(stores)
    frames = [dataset.get(fid) for fid in test_set.frame_ids]
    tstore = TrajectoryStore(stores)
    masks: dict[str, np.ndarray] = {}
    if bulk is not None:
        for tid in test_set.trajectory_ids:
            first = next(iter(tstore.iter_atoms(tid, [0])))
            if len(first) != len(bulk) or sorted(first.get_chemical_symbols()) != sorted(bulk.get_chemical_symbols()):
                masks[tid] = boundary_atoms(first, bulk)
    rows: list[ModelErrors] = []
    for iteration, model_id, kind in models:
        calc = calculator_from_spec(f"model:{model_id}", stores=stores, torch_threads=stores.settings.torch_threads,
                                    default_dtype="float32")
        de, df, groups_e, groups_f = [], [], {}, {}
        for frame in frames:
            atoms = frame.to_atoms()
            atoms.calc = calc
            e = (atoms.get_potential_energy() - frame.energy) / frame.natoms
            f = atoms.get_forces() - np.asarray(frame.forces)
            de.append(e)
            df.append(f)
            key = _group(frame.provenance.family, frame.provenance.temperature)
            groups_e.setdefault(key, []).append(e)
            groups_f.setdefault(key, []).append(f)
            mask = masks.get(str(frame.provenance.source))
            if mask is not None and mask.any() and (~mask).any():
                groups_f.setdefault(f"{frame.provenance.family} boundary atoms", []).append(f[mask])
                groups_f.setdefault(f"{frame.provenance.family} other atoms", []).append(f[~mask])
        allf = np.concatenate(df)
        by_group = {}
        for key, parts in groups_f.items():
            entry = _stats(np.concatenate(parts))
            if key in groups_e:
                entry["rmse_e_meV_atom"] = 1e3 * float(np.sqrt(np.mean(np.square(groups_e[key]))))
            by_group[key] = entry
        s = _stats(allf)
        rows.append(ModelErrors(iteration=iteration, model=model_id, kind=kind, n_frames=len(frames),
                                rmse_e_meV_atom=1e3 * float(np.sqrt(np.mean(np.square(de)))),
                                rmse_f_meV_A=s["rmse_f_meV_A"], mae_f_meV_A=s["mae_f_meV_A"],
                                p95_f_meV_A=s["p95_f_meV_A"], max_f_meV_A=s["max_f_meV_A"], by_group=by_group))
        logger.info("test set errors of %s (%s, iteration %s): E %.2f meV/atom, F %.1f meV/Å", model_id, kind,
                    iteration, rows[-1].rmse_e_meV_atom, rows[-1].rmse_f_meV_A)
    return TestErrorsDoc(test_set=f"{len(frames)} frames of {test_set.model_id}'s own MD", reference=test_set.labeler,
                         models=rows)


# ------------------------------------------------------------------------------------------------ properties
def _trajectory_atoms(tstore: TrajectoryStore, tid: str, min_step: int) -> list[Atoms]:
    return [a for a in tstore.iter_atoms(tid) if int(a.info.get("step", 0)) >= min_step]


def _li_msd(frames: list[Atoms], dt_fs: float) -> tuple[float | None, float | None, float | None]:
    """(MSD of Li at the longest lag used (Å²), that lag (fs), D (cm²/s) if the MSD grows linearly, else None)."""
    from mlipflow.benchmark.dynamics import diffusivity, msd, species_groups, unwrap_positions
    from mlipflow.errors import DataError

    groups = {k: v for k, v in species_groups(frames[0]).items() if k == "Li"}
    if not groups or len(frames) < 4:
        return None, None, None
    pos = unwrap_positions(frames)
    res = msd(pos, dt_fs, groups)
    curve = np.asarray(res.msd["Li"])
    lag = res.time_fs[-1]
    # a vibrational plateau is not diffusion: a D only when the MSD keeps growing over the second half of
    # enough lags for a fit
    half = len(curve) // 2
    if len(curve) < 8 or curve[-1] <= 1.5 * curve[half]:
        return float(curve[-1]), float(lag), None
    try:
        d = diffusivity(pos, dt_fs, groups, temperature_K=None)["Li"].D_cm2_s
    except DataError:
        return float(curve[-1]), float(lag), None
    return float(curve[-1]), float(lag), float(d)


def reference_properties(stores: Stores, model_id: str, reference: Any, *, n_steps: int, seed: int = 0,
                         processes: int = 1, tags: dict[str, Any] | None = None) -> list[PropertyComparison]:
    """The model's MD next to every reference-MD walker (same start cell, temperature, time step, stride)."""
    from mlipflow.benchmark.structure import adf, compare_distributions, rdf

    tstore = TrajectoryStore(stores)
    out: list[PropertyComparison] = []
    walkers: list[MDResult] = list(getattr(reference, "walkers", []) or [])
    eq = int(getattr(reference, "equilibration_steps", 0))
    conditions: dict[tuple[str | None, float, int], list[MDResult]] = {}
    for w in walkers:  # replicas of one cell and temperature are one reference
        if w.trajectory_id:
            conditions.setdefault((w.family, w.temperature, w.n_atoms), []).append(w)
    for (family, temperature, _), ws in conditions.items():
        meta = tstore.header(ws[0].trajectory_id).get("metadata") or {}
        ref_frames = [a for w in ws for a in _trajectory_atoms(tstore, w.trajectory_id, eq)]
        start = next(iter(tstore.iter_atoms(ws[0].trajectory_id, [0])))
        start.calc = None
        steps = sorted({int(a.info["step"]) for a in ref_frames})
        stride = steps[1] - steps[0] if len(steps) > 1 else 10
        dt = float(meta.get("timestep_fs", 1.0))
        settings = MDSettings(n_steps=n_steps, record_every=stride, timestep=dt, seed=seed + 20000,
                              velocity_scale=2.0, ensemble=meta.get("ensemble", "nvt_langevin"))
        (mw,) = run_walkers([start], [temperature], model_factory(model_id), settings, stores=stores,
                            metadata={"kind": "benchmark-properties", **(tags or {})}, processes=1)
        model_frames = _trajectory_atoms(tstore, mw.trajectory_id, eq) if mw.trajectory_id else []
        if not model_frames or not ref_frames:
            continue
        rmax = min(6.0, 0.5 * float(min(start.cell.lengths())) - 1e-6) if all(start.pbc) else 6.0
        # 0.02 Å bins, both curves smoothed with a 0.08 Å Gaussian before their peaks are located: the peak of ten
        # reference frames otherwise follows bin-to-bin noise (two 900 K CHGNet replicas of Li2O: Li-O peaks 0.055 Å
        # apart unsmoothed, 0.02 Å smoothed; 0.004 Å at 300 K)
        nbins = round(rmax / RDF_BIN)
        r_cmp = compare_distributions(rdf(model_frames, rmax=rmax, nbins=nbins),
                                      rdf(ref_frames, rmax=rmax, nbins=nbins), smooth_bins=RDF_SMOOTH_BINS)
        a_cmp = compare_distributions(adf(model_frames), adf(ref_frames), smooth_bins=2.0)
        one_ref = _trajectory_atoms(tstore, ws[0].trajectory_id, eq)  # MSD: one continuous reference trajectory
        m_msd, lag, m_d = _li_msd(model_frames[: len(one_ref)], stride * dt)
        r_msd, _, r_d = _li_msd(one_ref, stride * dt)
        _, _, m_d_long = _li_msd(model_frames, stride * dt)
        shifts = {k: v for k, v in r_cmp.peak_shifts.items() if k != "all"}
        note = (f"RDF ({RDF_BIN} Å bins, peaks located on curves smoothed over {RDF_SMOOTH_BINS * RDF_BIN:.2f} Å) "
                f"and ADF over {len(model_frames)} model and {len(ref_frames)} reference frames ({len(ws)} "
                f"reference trajectories, {stride * dt:g} fs apart); Li MSD compared at the reference's longest lag "
                f"({lag} fs)")
        if r_d is None:
            note += ("; the reference MD is too short for a diffusivity (Li MSD on its vibrational plateau): "
                     "no D is compared")
        out.append(PropertyComparison(
            family=family, temperature_K=temperature, rdf_peaks_model_A=r_cmp.model_peaks,
            rdf_peaks_reference_A=r_cmp.reference_peaks, rdf_peak_shifts_A=shifts,
            rdf_max_shift_A=max((abs(v) for v in shifts.values()), default=None),
            adf_peaks_model_deg=a_cmp.model_peaks, adf_peaks_reference_deg=a_cmp.reference_peaks,
            adf_max_shift_deg=max((abs(v) for k, v in a_cmp.peak_shifts.items()), default=None),
            msd_li_model_A2=m_msd, msd_li_reference_A2=r_msd, lag_fs=lag, d_li_model_cm2_s=m_d_long or m_d,
            d_li_reference_cm2_s=r_d, note=note, frames_model=len(model_frames), frames_reference=len(ref_frames)))
        logger.info("properties at %.0f K (%s): largest RDF first-peak shift %s Å", temperature, family,
                    out[-1].rdf_max_shift_A)
    return out


# ------------------------------------------------------------------------------------------------ stability, GB
def stability_runs(stores: Stores, model_id: str, structures: Sequence[Structure], temperature: float, *,
                   n_steps: int, timestep: float = 1.0, seed: int = 0, processes: int = 1,
                   tags: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Long MD of each cell at ``temperature`` with the sampling monitors; what stopped it, and when (ps)."""
    settings = MDSettings(n_steps=n_steps, record_every=max(10, n_steps // 50), timestep=timestep,
                          seed=seed + 30000, velocity_scale=2.0, relax_steps=RELAX_STEPS)
    walkers = run_walkers(list(structures), [temperature], model_factory(model_id), settings, stores=stores,
                          metadata={"kind": "benchmark-stability", **(tags or {})}, processes=processes)
    return [{"family": w.family, "T_K": temperature, "stable": w.stop_reason == "completed",
             "stop_reason": w.stop_reason, "time_ps": w.n_steps * timestep / 1000, "n_atoms": w.n_atoms,
             "steps_per_s": w.steps_per_second} for w in walkers]


def _relax(atoms: Atoms, calc: Any, steps: int, fmax: float = 0.05) -> tuple[Atoms, int]:
    from ase.optimize import FIRE

    work = atoms.copy()
    work.calc = calc
    opt = FIRE(work, logfile=None)
    opt.run(fmax=fmax, steps=steps)
    return work, int(opt.nsteps)


def boundary_energies(stores: Stores, model_id: str, boundaries: Sequence[Structure], bulk: Structure,
                      labeler: Labeler, *, relax_steps: int = 60) -> list[GBEnergy]:
    """Boundary energy after relaxing positions (cell fixed) with the model and with the reference (J/m²).

    The reference relaxation starts from the model's relaxed cell (it converges in fewer steps when the model is
    good); the bulk energy per formula unit is each method's own, of the unrelaxed bulk cell's lattice.
    """
    from mlipflow.benchmark.baselines import calculator_from_spec
    from mlipflow.benchmark.energetics import grain_boundary_energy
    from mlipflow.errors import DataError

    model = calculator_from_spec(f"model:{model_id}", stores=stores, torch_threads=stores.settings.torch_threads,
                                 default_dtype="float32")
    labeler.setup()
    reference = labeler.ase_calculator()
    bulk_atoms = AseAtomsAdaptor.get_atoms(bulk)
    out = []
    ratio = bulk.composition.reduced_composition
    for gb in boundaries:
        prov = (gb.properties or {}).get("provenance") or {}
        if gb.composition.reduced_composition != ratio:
            logger.info("boundary energy: %s is not stoichiometric (%s against the bulk %s): skipped",
                        gb.composition.formula, gb.composition.reduced_formula, ratio.reduced_formula)
            continue
        atoms = AseAtomsAdaptor.get_atoms(gb)
        relaxed_m, nm = _relax(atoms, model, relax_steps)
        relaxed_r, nr = _relax(relaxed_m, reference, relax_steps)
        n_b = int(prov.get("n_boundaries", 2))
        try:
            em = grain_boundary_energy(relaxed_m, bulk_atoms, model, n_boundaries=n_b).value_J_m2
            er = grain_boundary_energy(relaxed_r, bulk_atoms, reference, n_boundaries=n_b).value_J_m2
        except DataError as exc:
            logger.info("boundary energy of %s skipped: %s", gb.composition.formula, exc)
            continue
        rmsd = float(np.sqrt(np.mean(np.sum((relaxed_m.positions - relaxed_r.positions) ** 2, axis=1))))
        out.append(GBEnergy(family=prov.get("family"), formula=gb.composition.reduced_formula, n_atoms=len(gb),
                            model_J_m2=em, reference_J_m2=er, difference_J_m2=em - er, relaxed_rmsd_A=rmsd,
                            note=f"positions relaxed (FIRE, fmax 0.05 eV/Å): model {nm} steps, reference {nr} steps "
                                 f"from the model's minimum; cell fixed"))
        logger.info("boundary energy %s: model %.3f, reference %.3f J/m²", gb.composition.reduced_formula, em, er)
    return out


# ------------------------------------------------------------------------------------------------ verdict
def verdict(targets: Any, final: ModelErrors | None, properties: Sequence[PropertyComparison],
            stability: Sequence[dict[str, Any]], curve: Sequence[ModelErrors]) -> Verdict:
    """Each target with its measured figure: errors on the MLMD test set, RDF peaks, stability, learning."""
    checks: list[dict[str, Any]] = []

    def check(name: str, target: float | None, measured: float | None, unit: str, ok: bool | None = None) -> None:
        if target is None and ok is None:
            return
        passed = ok if ok is not None else (measured is not None and measured <= target)  # type: ignore[operator]
        checks.append({"name": name, "target": target, "measured": measured, "unit": unit, "passed": bool(passed)})

    if final is not None:
        check("force RMSE on the MLMD test set", None if targets.force_rmse is None else 1e3 * targets.force_rmse,
              final.rmse_f_meV_A, "meV/Å")
        check("energy RMSE on the MLMD test set", None if targets.energy_rmse is None else 1e3 * targets.energy_rmse,
              final.rmse_e_meV_atom, "meV/atom")
    else:
        checks.append({"name": "MLMD test set", "target": None, "measured": None, "unit": "", "passed": False})
    shifts = [p.rdf_max_shift_A for p in properties if p.rdf_max_shift_A is not None]
    if targets.rdf_peak_shift is not None:
        check("largest RDF first-peak shift against the reference MD", targets.rdf_peak_shift,
              max(shifts) if shifts else None, "Å", ok=bool(shifts) and max(shifts) <= targets.rdf_peak_shift)
    if stability:
        stable = sum(1 for s in stability if s["stable"])
        check("stable long MD runs", float(len(stability)), float(stable), "runs", ok=stable == len(stability))
    members = [m for m in curve if m.kind == "member"]
    if len(members) >= 2:
        check("force RMSE falls from the first committee to the last", members[0].rmse_f_meV_A,
              members[-1].rmse_f_meV_A, "meV/Å", ok=members[-1].rmse_f_meV_A < members[0].rmse_f_meV_A)
    return Verdict(passed=all(c["passed"] for c in checks) and bool(checks), checks=checks)


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds)``."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start
