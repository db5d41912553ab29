"""Vibrations and transport from MD: vDOS, MSD, diffusivity, Arrhenius fits, Nernst–Einstein conductivity.

Units: time in fs, positions in Å, velocities in Å/fs, diffusivity in cm²/s (1 Å²/fs = 0.1 cm²/s), temperature
in K, activation energy in eV, conductivity in S/cm, frequency in THz and cm⁻¹.

Definitions (stated, so that numbers can be compared)
-----------------------------------------------------
vDOS
    Power spectrum of the velocities, |FFT(v_i(t))|² summed over atoms and Cartesian components (the Fourier
    transform of the velocity autocorrelation, Wiener–Khinchin), optionally mass-weighted, with a Hann window,
    normalised to unit area on the THz axis.  1 THz = 33.3564 cm⁻¹.
MSD
    ⟨|r_i(t0 + t) - r_i(t0)|²⟩ over atoms of one species and over all time origins t0 (FFT algorithm), on
    unwrapped positions (consecutive frames joined by the minimum-image displacement).
Diffusivity
    D = slope / (2 d) of a straight-line fit of MSD(t) inside the stated fitting window (default from 10% to 50%
    of the trajectory length: the ballistic start and the noisy long-lag tail are left out), d = 3.
    Error bar: standard error over independent runs, or over ``n_blocks`` contiguous blocks of one run.
Arrhenius
    ln D = ln D0 - Ea / (k_B T), weighted least squares (weights from the error bars when given); D at 300 K
    extrapolated with its 1σ from the fit covariance.
Nernst–Einstein
    σ = n q² D / (H_R k_B T), n = N_ion / V, with the Haven ratio H_R stated (1 = uncorrelated hops).
Regions
    An atom belongs to the boundary region when its position at t = 0 lies within ``half_width`` Å of a boundary
    plane (measured along ``axis`` with periodic images), to the bulk otherwise.
"""

# Names carry their unit as in ASE's ``temperature_K`` (``D_cm2_s``, ``Ea_eV``): keep the capitals.
# ruff: noqa: N803, N815

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms, units
from pydantic import BaseModel

from mlipflow.errors import DataError

THZ_TO_CM1 = 33.35640951981521
A2_PER_FS_TO_CM2_PER_S = 0.1
KB_EV = 8.617333262e-5  # eV/K
KB_J = 1.380649e-23  # J/K
E_CHARGE = 1.602176634e-19  # C


# ------------------------------------------------------------------------------------ trajectories
def unwrap_positions(images: Sequence[Atoms]) -> np.ndarray:
    """Unwrapped Cartesian positions (n_frames, n_atoms, 3) in Å.

    Consecutive frames are joined by the minimum-image displacement in each frame's cell, so frames must be close
    enough in time that no atom moves more than half a cell length between them.
    """
    if not images:
        raise DataError("unwrap_positions: no frames")
    out = np.empty((len(images), len(images[0]), 3))
    out[0] = images[0].positions
    for k in range(1, len(images)):
        cell = images[k].cell.array
        frac = np.linalg.solve(cell.T, (images[k].positions - images[k - 1].positions).T).T
        frac -= np.round(frac) * np.asarray(images[k].pbc, dtype=float)
        out[k] = out[k - 1] + frac @ cell
    return out


def _msd_fft(x: np.ndarray) -> np.ndarray:
    """MSD(lag) of trajectories x (n_frames, n_atoms, 3) averaged over origins, per atom: (n_frames, n_atoms)."""
    n = x.shape[0]
    d = np.sum(x**2, axis=2)  # (n, atoms)
    d = np.vstack([d, np.zeros((1, d.shape[1]))])
    q = 2.0 * d.sum(axis=0)
    s1 = np.zeros((n, x.shape[1]))
    for m in range(n):
        q = q - d[m - 1] - d[n - m]
        s1[m] = q / (n - m)
    f = np.fft.rfft(x, n=2 * n, axis=0)
    acf = np.fft.irfft(f * f.conj(), axis=0)[:n].sum(axis=2)
    s2 = acf / (n - np.arange(n))[:, None]
    return s1 - 2.0 * s2


class MSDResult(BaseModel):
    """MSD per group (species or region), averaged over atoms and time origins.

    Parameters
    ----------
    time_fs
        Lag times (fs).
    msd
        Group -> MSD (Å²) on ``time_fs``.
    n_atoms
        Group -> number of atoms.
    """

    time_fs: list[float]
    msd: dict[str, list[float]]
    n_atoms: dict[str, int]


def msd(
    positions: np.ndarray,
    dt_fs: float,
    groups: dict[str, Sequence[int]],
    *,
    max_lag_fraction: float = 0.5,
    remove_drift: bool = True,
) -> MSDResult:
    """MSD of groups of atoms from unwrapped positions.

    Parameters
    ----------
    positions
        Unwrapped positions (n_frames, n_atoms, 3), Å (:func:`unwrap_positions`).
    dt_fs
        Time between frames (fs).
    groups
        Name -> atom indices (e.g. from :func:`species_groups` or :func:`region_groups`).
    max_lag_fraction
        Longest lag kept, as a fraction of the trajectory (statistics degrade beyond ~0.5).
    remove_drift
        Subtract the centre-of-mass drift of all atoms (equal weights) frame by frame.
    """
    x = np.asarray(positions, dtype=float)
    if remove_drift:
        x = x - (x.mean(axis=1, keepdims=True) - x[:1].mean(axis=1, keepdims=True))
    nlag = max(2, int(x.shape[0] * max_lag_fraction))
    per_atom = _msd_fft(x)[:nlag]
    out = {name: per_atom[:, list(idx)].mean(axis=1).tolist() for name, idx in groups.items() if len(idx)}
    return MSDResult(
        time_fs=(np.arange(nlag) * dt_fs).tolist(), msd=out, n_atoms={k: len(v) for k, v in groups.items()}
    )


def species_groups(atoms: Atoms, species: Sequence[str] | None = None) -> dict[str, list[int]]:
    """Species -> atom indices."""
    sym = atoms.get_chemical_symbols()
    names = species or sorted(set(sym))
    return {s: [i for i, x in enumerate(sym) if x == s] for s in names}


def region_groups(
    atoms: Atoms, *, boundaries: Sequence[float], half_width: float, axis: int = 2, species: str | None = None
) -> dict[str, list[int]]:
    """Split atoms into ``boundary`` and ``bulk`` by their position at t = 0.

    Parameters
    ----------
    atoms
        The first frame.
    boundaries
        Positions of the boundary planes along ``axis`` (Å, Cartesian; a periodic GB cell has two).
    half_width
        Half the thickness of the boundary slab (Å).
    axis
        Cell axis normal to the boundary (0, 1, 2); assumed orthogonal to the other two.
    species
        Only atoms of this species (e.g. ``Li``).
    """
    length = float(np.linalg.norm(atoms.cell[axis]))
    z = atoms.positions[:, axis]
    dist = np.min([np.abs((z - b + 0.5 * length) % length - 0.5 * length) for b in boundaries], axis=0)
    sym = np.asarray(atoms.get_chemical_symbols())
    chosen = np.ones(len(atoms), bool) if species is None else sym == species
    return {
        "boundary": np.flatnonzero(chosen & (dist <= half_width)).tolist(),
        "bulk": np.flatnonzero(chosen & (dist > half_width)).tolist(),
    }


class DiffusionResult(BaseModel):
    """Diffusivity of one group with its error bar and the stated fit.

    Parameters
    ----------
    group
        Species or region.
    D_cm2_s
        Diffusion coefficient (cm²/s).
    D_err_cm2_s
        Standard error (cm²/s) from ``error_from`` (``None`` with a single estimate).
    error_from
        ``independent runs (n=…)``, ``blocks (n=…)`` or ``none``.
    fit_window_fs
        (start, end) of the fitted lag times (fs).
    estimates_cm2_s
        The individual estimates (per run or block).
    temperature_K
        Temperature of the runs (K), when known.
    """

    group: str
    D_cm2_s: float
    D_err_cm2_s: float | None = None
    error_from: str = "none"
    fit_window_fs: tuple[float, float]
    estimates_cm2_s: list[float] = []
    temperature_K: float | None = None


def fit_diffusivity(
    time_fs: Sequence[float], msd_A2: Sequence[float], *, window: tuple[float, float] = (0.1, 1.0), dim: int = 3
) -> tuple[float, tuple[float, float]]:
    """D (cm²/s) from a straight-line fit of MSD(t) inside ``window``.

    Parameters
    ----------
    time_fs, msd_A2
        Lag times (fs) and MSD (Å²).
    window
        Fit window as fractions of the longest lag given (start, end).
    dim
        Dimensionality of the diffusion (3 for bulk, 2 for in-plane).

    Returns
    -------
    tuple
        (D in cm²/s, (start, end) of the window in fs).
    """
    t, m = np.asarray(time_fs, float), np.asarray(msd_A2, float)
    lo, hi = window[0] * t[-1], window[1] * t[-1]
    sel = (t >= lo) & (t <= hi)
    if sel.sum() < 3:
        raise DataError(f"MSD fit window {lo:.1f}-{hi:.1f} fs holds {sel.sum()} points: use a longer trajectory")
    slope = np.polyfit(t[sel], m[sel], 1)[0]
    return float(slope / (2 * dim) * A2_PER_FS_TO_CM2_PER_S), (float(t[sel][0]), float(t[sel][-1]))


def _summarise(group: str, estimates: list[float], window: tuple[float, float], source: str,
               temperature_K: float | None) -> DiffusionResult:
    arr = np.asarray(estimates)
    err = float(arr.std(ddof=1) / np.sqrt(arr.size)) if arr.size > 1 else None
    return DiffusionResult(
        group=group, D_cm2_s=float(arr.mean()), D_err_cm2_s=err, error_from=source if arr.size > 1 else "none",
        fit_window_fs=window, estimates_cm2_s=arr.tolist(), temperature_K=temperature_K,
    )


def diffusivity(
    positions: np.ndarray,
    dt_fs: float,
    groups: dict[str, Sequence[int]],
    *,
    n_blocks: int = 1,
    window: tuple[float, float] = (0.1, 1.0),
    max_lag_fraction: float = 0.5,
    temperature_K: float | None = None,
) -> dict[str, DiffusionResult]:
    """Diffusivity per group from one trajectory, with a block-averaged error bar when ``n_blocks`` > 1.

    Parameters
    ----------
    positions
        Unwrapped positions (n_frames, n_atoms, 3), Å.
    dt_fs
        Time between frames (fs).
    groups
        Name -> atom indices.
    n_blocks
        Contiguous blocks the trajectory is cut into; D is fitted in each and the standard error reported.
    window
        Fit window as fractions of the longest lag ``max_lag_fraction`` x block length.
    max_lag_fraction
        Longest lag (fraction of a block).
    temperature_K
        Recorded with the result (K).
    """
    x = np.asarray(positions)
    size = x.shape[0] // n_blocks
    estimates: dict[str, list[float]] = {g: [] for g in groups}
    fit_window = (0.0, 0.0)
    for b in range(n_blocks):
        res = msd(x[b * size : (b + 1) * size], dt_fs, groups, max_lag_fraction=max_lag_fraction)
        for g, curve in res.msd.items():
            d, fit_window = fit_diffusivity(res.time_fs, curve, window=window)
            estimates[g].append(d)
    return {
        g: _summarise(g, est, fit_window, f"blocks (n={n_blocks})", temperature_K)
        for g, est in estimates.items()
        if est
    }


def diffusivity_from_runs(
    runs: Sequence[np.ndarray],
    dt_fs: float,
    groups: dict[str, Sequence[int]],
    *,
    window: tuple[float, float] = (0.1, 1.0),
    max_lag_fraction: float = 0.5,
    temperature_K: float | None = None,
) -> dict[str, DiffusionResult]:
    """Diffusivity per group with the standard error over independent runs (unwrapped positions each)."""
    estimates: dict[str, list[float]] = {g: [] for g in groups}
    fit_window = (0.0, 0.0)
    for x in runs:
        res = msd(x, dt_fs, groups, max_lag_fraction=max_lag_fraction)
        for g, curve in res.msd.items():
            d, fit_window = fit_diffusivity(res.time_fs, curve, window=window)
            estimates[g].append(d)
    return {
        g: _summarise(g, est, fit_window, f"independent runs (n={len(runs)})", temperature_K)
        for g, est in estimates.items() if est
    }


# ---------------------------------------------------------------------------------------- Arrhenius
class ArrheniusResult(BaseModel):
    """ln D = ln D0 - Ea/(k_B T).

    Parameters
    ----------
    Ea_eV, Ea_err_eV
        Activation energy and its 1σ (eV).
    D0_cm2_s
        Prefactor (cm²/s).
    D300_cm2_s, D300_err_cm2_s
        Extrapolation to ``T_extrapolated_K`` (default 300 K) and its 1σ (cm²/s).
    temperatures_K, D_cm2_s
        The fitted data.
    """

    Ea_eV: float
    Ea_err_eV: float | None
    D0_cm2_s: float
    D300_cm2_s: float
    D300_err_cm2_s: float | None
    T_extrapolated_K: float = 300.0
    temperatures_K: list[float]
    D_cm2_s: list[float]
    r2: float | None = None


def arrhenius_fit(
    temperatures_K: Sequence[float],
    D_cm2_s: Sequence[float],
    D_err_cm2_s: Sequence[float] | None = None,
    *,
    T_extrapolate_K: float = 300.0,
) -> ArrheniusResult:
    """Weighted Arrhenius fit with extrapolation (see module docstring).

    Parameters
    ----------
    temperatures_K
        At least two temperatures (K).
    D_cm2_s
        Diffusivities (cm²/s), positive.
    D_err_cm2_s
        1σ of each D (cm²/s); weights 1/σ(ln D)² when given.
    T_extrapolate_K
        Temperature of the extrapolation (K).
    """
    t = np.asarray(temperatures_K, float)
    d = np.asarray(D_cm2_s, float)
    if t.size < 2 or np.any(d <= 0):
        raise DataError(f"Arrhenius fit needs >= 2 temperatures with D > 0, got T={t.tolist()}, D={d.tolist()}")
    x = 1.0 / (KB_EV * t)
    y = np.log(d)
    w = np.ones_like(y) if D_err_cm2_s is None else 1.0 / np.maximum(np.asarray(D_err_cm2_s, float) / d, 1e-12) ** 2
    a = np.vstack([np.ones_like(x), -x]).T  # y = lnD0 - Ea * x
    aw = a * np.sqrt(w)[:, None]
    yw = y * np.sqrt(w)
    coef, *_ = np.linalg.lstsq(aw, yw, rcond=None)
    resid = yw - aw @ coef
    dof = t.size - 2
    cov = None
    if dof > 0:
        cov = np.linalg.inv(aw.T @ aw) * (float(resid @ resid) / dof if D_err_cm2_s is None else 1.0)
    ln_d0, ea = coef
    xe = 1.0 / (KB_EV * T_extrapolate_K)
    ln_de = ln_d0 - ea * xe
    de_err = None
    if cov is not None:
        g = np.array([1.0, -xe])
        de_err = float(np.exp(ln_de) * np.sqrt(g @ cov @ g))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - a @ coef) ** 2)) / ss_tot if ss_tot > 0 else None
    return ArrheniusResult(
        Ea_eV=float(ea), Ea_err_eV=None if cov is None else float(np.sqrt(cov[1, 1])),
        D0_cm2_s=float(np.exp(ln_d0)),
        D300_cm2_s=float(np.exp(ln_de)), D300_err_cm2_s=de_err, T_extrapolated_K=T_extrapolate_K,
        temperatures_K=t.tolist(), D_cm2_s=d.tolist(), r2=r2,
    )


def nernst_einstein_conductivity(
    D_cm2_s: float, *, n_ions: int, volume_A3: float, temperature_K: float, charge: int = 1, haven_ratio: float = 1.0
) -> float:
    """Ionic conductivity σ = n q² D / (H_R k_B T) in S/cm.

    Parameters
    ----------
    D_cm2_s
        Tracer diffusivity of the ion (cm²/s).
    n_ions
        Number of mobile ions in the cell.
    volume_A3
        Cell volume (Å³).
    temperature_K
        Temperature (K).
    charge
        Ion charge in units of e.
    haven_ratio
        H_R = D_tracer / D_sigma (1 = uncorrelated; 0.3–0.7 typical of fast Li conductors): state it.
    """
    n_per_cm3 = n_ions / (volume_A3 * 1e-24)
    q = charge * E_CHARGE
    return float(n_per_cm3 * q**2 * D_cm2_s / (haven_ratio * KB_J * temperature_K))


# -------------------------------------------------------------------------------------------- vDOS
class VDOSResult(BaseModel):
    """Vibrational density of states from the velocity autocorrelation.

    Parameters
    ----------
    frequency_THz, frequency_cm1
        Frequency axis (THz and cm⁻¹).
    dos
        ``all`` and species -> DOS normalised to unit area on the THz axis (1/THz).
    peak_cm1
        Curve -> position of the highest peak (cm⁻¹) (the LLZO|LCO paper's 16.4 cm⁻¹ metric).
    """

    frequency_THz: list[float]
    frequency_cm1: list[float]
    dos: dict[str, list[float]]
    peak_cm1: dict[str, float]


def velocities_from_images(images: Sequence[Atoms]) -> np.ndarray:
    """Velocities (n_frames, n_atoms, 3) in Å/fs from the frames' momenta."""
    if any(img.get_momenta() is None for img in images):
        raise DataError("frames carry no momenta: store velocities in the trajectory to compute a vDOS")
    return np.asarray([img.get_velocities() * units.fs for img in images])


def vdos(
    velocities: np.ndarray,
    dt_fs: float,
    symbols: Sequence[str],
    *,
    masses: Sequence[float] | None = None,
    max_frequency_THz: float | None = None,
) -> VDOSResult:
    """Total and species-resolved vDOS (see module docstring).

    Parameters
    ----------
    velocities
        (n_frames, n_atoms, 3) in Å/fs, frames ``dt_fs`` apart.
    dt_fs
        Time between frames (fs); the Nyquist frequency is 1/(2 dt).
    symbols
        Element of each atom.
    masses
        Atomic masses (amu) for a mass-weighted vDOS; ``None`` weights all atoms equally.
    max_frequency_THz
        Cut the axis here (default: Nyquist).
    """
    v = np.asarray(velocities, float)
    nf = v.shape[0]
    window = np.hanning(nf)[:, None, None]
    spec = np.abs(np.fft.rfft((v - v.mean(axis=0)) * window, axis=0)) ** 2  # (nfreq, atoms, 3)
    per_atom = spec.sum(axis=2)
    if masses is not None:
        per_atom = per_atom * np.asarray(masses)[None, :]
    freq_thz = np.fft.rfftfreq(nf, d=dt_fs) * 1e3  # 1/fs -> THz
    keep = freq_thz <= (max_frequency_THz or freq_thz[-1])
    freq_thz = freq_thz[keep]
    sym = np.asarray(symbols)
    curves = {"all": per_atom[keep].sum(axis=1)}
    for s in sorted(set(symbols)):
        curves[s] = per_atom[keep][:, sym == s].sum(axis=1)
    df = freq_thz[1] - freq_thz[0]
    dos = {k: c / (c.sum() * df) if c.sum() > 0 else c for k, c in curves.items()}
    peaks = {k: float(freq_thz[1:][np.argmax(c[1:])] * THZ_TO_CM1) for k, c in dos.items()}
    return VDOSResult(
        frequency_THz=freq_thz.tolist(), frequency_cm1=(freq_thz * THZ_TO_CM1).tolist(),
        dos={k: c.tolist() for k, c in dos.items()}, peak_cm1=peaks,
    )


def plot_msd(results: dict[str, MSDResult], title: str = "") -> object:
    """MSD curves (Å² against ps) of several sources; a Figure."""
    from mlipflow.benchmark.plotting import new_figure

    fig, (ax,) = new_figure(1)
    for label, res in results.items():
        t = np.asarray(res.time_fs) / 1000
        for g, curve in res.msd.items():
            ax.plot(t, curve, label=f"{label} {g}")
    ax.set_xlabel("t (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_arrhenius(results: dict[str, ArrheniusResult], title: str = "") -> object:
    """log10 D against 1000/T with fits, for several models; a Figure."""
    from mlipflow.benchmark.plotting import new_figure

    fig, (ax,) = new_figure(1)
    for label, res in results.items():
        t = np.asarray(res.temperatures_K)
        ax.semilogy(1000 / t, res.D_cm2_s, "o", label=f"{label}: Ea={res.Ea_eV:.3f} eV")
        tt = np.linspace(min(t.min(), res.T_extrapolated_K), t.max(), 50)
        ax.semilogy(1000 / tt, res.D0_cm2_s * np.exp(-res.Ea_eV / (KB_EV * tt)), "--")
    ax.set_xlabel("1000/T (1/K)")
    ax.set_ylabel("D (cm²/s)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_vdos(results: dict[str, VDOSResult], title: str = "") -> object:
    """vDOS against cm⁻¹ of several sources; a Figure."""
    from mlipflow.benchmark.plotting import new_figure

    fig, (ax,) = new_figure(1)
    for label, res in results.items():
        ax.plot(res.frequency_cm1, res.dos["all"], label=label)
    ax.set_xlabel("frequency (cm⁻¹)")
    ax.set_ylabel("vDOS (1/THz)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
