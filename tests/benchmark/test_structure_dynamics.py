"""RDF/ADF of ideal crystals, MSD of a synthetic random walk, Arrhenius of synthetic D(T), vDOS of a sine."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from mlipflow.benchmark.dynamics import (
    KB_EV,
    THZ_TO_CM1,
    arrhenius_fit,
    diffusivity,
    diffusivity_from_runs,
    fit_diffusivity,
    msd,
    nernst_einstein_conductivity,
    region_groups,
    species_groups,
    unwrap_positions,
    vdos,
)
from mlipflow.benchmark.structure import adf, compare_distributions, first_peak, rdf
from mlipflow.errors import DataError


def test_rdf_first_peak_of_ideal_bcc_is_the_neighbour_distance():
    a = 3.44
    atoms = bulk("Li", "bcc", a=a, cubic=True).repeat(3)
    res = rdf(atoms, rmax=6.0, nbins=300)
    peak = first_peak(res.x, res.curves["Li-Li"])
    assert peak == pytest.approx(np.sqrt(3) / 2 * a, abs=0.02)  # one bin
    # g(r) tends to 1 on average at long range: integrate the coordination number of the first shell = 8
    r, g = np.asarray(res.x), np.asarray(res.curves["Li-Li"])
    rho = len(atoms) / atoms.get_volume()
    shell = (r > 2.8) & (r < 3.2)
    assert np.sum(4 * np.pi * r[shell] ** 2 * g[shell] * rho * (r[1] - r[0])) == pytest.approx(8, rel=0.03)


def test_partial_rdf_of_rocksalt_and_adf_of_bcc():
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)
    res = rdf(nacl, rmax=5.0, nbins=250)
    assert first_peak(res.x, res.curves["Cl-Na"]) == pytest.approx(2.82, abs=0.02)
    assert first_peak(res.x, res.curves["Na-Na"]) == pytest.approx(5.64 / np.sqrt(2), abs=0.02)
    angles = adf(bulk("Li", "bcc", a=3.44, cubic=True).repeat(2), cutoff=3.1)
    assert first_peak(angles.x, angles.curves["Li-Li-Li"]) == pytest.approx(70.53, abs=1.0)


def test_rdf_comparison_reports_peak_shift_and_integrated_difference():
    ref = rdf(bulk("Li", "bcc", a=3.44, cubic=True).repeat(3), rmax=6.0, nbins=300)
    model = rdf(bulk("Li", "bcc", a=3.50, cubic=True).repeat(3), rmax=6.0, nbins=300)
    cmp = compare_distributions(model, ref)
    assert cmp.peak_shifts["Li-Li"] == pytest.approx(np.sqrt(3) / 2 * 0.06, abs=0.025)
    assert cmp.integrated_abs_difference["Li-Li"] > 0
    assert compare_distributions(ref, ref).peak_rmse == 0.0


def _random_walk(n_frames: int, n_atoms: int, dt_fs: float, d_cm2_s: float, box: float, seed: int) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(2 * (d_cm2_s / 0.1) * dt_fs)  # per Cartesian component, Å
    x = np.cumsum(rng.normal(0.0, sigma, (n_frames, n_atoms, 3)), axis=0)
    return [Atoms(f"Li{n_atoms}", positions=p % box, cell=[box] * 3, pbc=True) for p in x]


def test_msd_of_random_walk_gives_back_its_diffusion_coefficient():
    d_true, dt = 2.0e-5, 2.0  # cm²/s, fs
    frames = _random_walk(1500, 200, dt, d_true, box=12.0, seed=1)
    pos = unwrap_positions(frames)  # walkers cross the box many times: unwrapping is tested too
    res = diffusivity(pos, dt, species_groups(frames[0]), n_blocks=3)["Li"]
    assert res.D_cm2_s == pytest.approx(d_true, rel=0.05)
    assert res.D_err_cm2_s is not None and res.D_err_cm2_s < 0.05 * d_true
    assert res.error_from == "blocks (n=3)"
    assert res.fit_window_fs[0] > 0 and res.fit_window_fs[1] > res.fit_window_fs[0]
    runs = [unwrap_positions(_random_walk(600, 100, dt, d_true, 12.0, seed)) for seed in (2, 3, 4)]
    by_runs = diffusivity_from_runs(runs, dt, {"Li": range(100)})["Li"]
    assert by_runs.D_cm2_s == pytest.approx(d_true, rel=0.05)
    assert by_runs.error_from == "independent runs (n=3)"


def test_msd_fft_matches_direct_average_and_fit_window_is_checked():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=(50, 4, 3)), axis=0)
    res = msd(x, 1.0, {"all": range(4)}, max_lag_fraction=1.0, remove_drift=False)
    lag = 7
    direct = np.mean(np.sum((x[lag:] - x[:-lag]) ** 2, axis=2))
    assert res.msd["all"][lag] == pytest.approx(direct)
    with pytest.raises(DataError, match="fit window"):
        fit_diffusivity([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], window=(0.9, 1.0))


def test_arrhenius_fit_gives_back_activation_energy():
    temps = np.array([700.0, 800.0, 900.0, 1000.0, 1200.0, 1400.0])
    ea, d0 = 0.25, 3e-3
    d = d0 * np.exp(-ea / (KB_EV * temps))
    exact = arrhenius_fit(temps, d)
    assert exact.Ea_eV == pytest.approx(ea, rel=1e-6)
    assert exact.D300_cm2_s == pytest.approx(d0 * np.exp(-ea / (KB_EV * 300)), rel=1e-6)
    noisy = d * np.exp(np.random.default_rng(0).normal(0, 0.01, temps.size))
    fit = arrhenius_fit(temps, noisy, 0.01 * noisy)
    assert fit.Ea_eV == pytest.approx(ea, rel=0.02)
    assert fit.Ea_err_eV is not None and fit.D300_err_cm2_s is not None


def test_nernst_einstein_and_regions():
    # 1e-6 cm²/s, 1 ion per 100 Å³ at 300 K: n q² D / kT = 1e22 * (1.602e-19)² * 1e-6 / (1.381e-23 * 300)
    sigma = nernst_einstein_conductivity(1e-6, n_ions=1, volume_A3=100.0, temperature_K=300.0)
    assert sigma == pytest.approx(1e22 * 1.602176634e-19**2 * 1e-6 / (1.380649e-23 * 300), rel=1e-9)
    assert nernst_einstein_conductivity(1e-6, n_ions=1, volume_A3=100.0, temperature_K=300.0,
                                        haven_ratio=0.5) == pytest.approx(2 * sigma)
    atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat((1, 1, 6))
    groups = region_groups(atoms, boundaries=[0.0], half_width=2.0)
    z = atoms.positions[:, 2]
    length = atoms.cell[2, 2]
    assert set(groups["boundary"]) == {i for i, v in enumerate(z) if min(v, length - v) <= 2.0}
    assert len(groups["boundary"]) + len(groups["bulk"]) == len(atoms)


def test_vdos_peak_of_a_sine_velocity():
    dt, f_thz = 1.0, 10.0
    t = np.arange(2000) * dt
    phases = np.random.default_rng(0).uniform(0, 2 * np.pi, (1, 3, 3))
    v = np.cos(2 * np.pi * f_thz * 1e-3 * t[:, None, None] + phases)
    res = vdos(v, dt, ["Li", "Li", "O"])
    resolution = 1e3 / (t.size * dt) * THZ_TO_CM1
    assert res.peak_cm1["all"] == pytest.approx(f_thz * THZ_TO_CM1, abs=resolution)
    assert set(res.dos) == {"all", "Li", "O"}
