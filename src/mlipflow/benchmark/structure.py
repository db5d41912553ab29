"""Radial and angular distribution functions per species pair, and their comparison with a reference (V7, V8).

Distances use the minimum-image convention through ``ase.neighborlist.neighbor_list`` (any cell shape, any
cutoff, also beyond half the cell).  Units: distances in Å, angles in degrees.

Definitions
-----------
``g_AB(r)``
    Partial RDF: ordered pairs (i in A, j in B, i != j) at distance r in [r, r + dr), divided by
    N_A · N_B' / V · 4πr²dr, with N_B' = N_B - 1 when A = B; averaged over frames.  ``"all"`` is the total RDF.
ADF ``B-A-C``
    Distribution of angles B–A–C at centres of species A with both neighbours within ``cutoff`` Å; normalised
    to unit area (1/degree).
Comparison
    First-peak positions of model and reference (Å or °), their difference, the RMSE of the first-peak shifts over
    pairs (the LLZO|LCO paper's 0.054 Å metric) and the integrated absolute difference ∫|g_model - g_ref| dr.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list
from pydantic import BaseModel
from scipy.signal import find_peaks

from mlipflow.errors import DataError


class DistributionResult(BaseModel):
    """A set of distributions on one grid.

    Parameters
    ----------
    kind
        ``rdf`` (x in Å) or ``adf`` (x in degrees).
    x
        Bin centres.
    curves
        Pair (``Li-O``) or triplet (``O-Li-O``) -> values on ``x``.
    n_frames
        Frames averaged.
    """

    kind: str
    x: list[float]
    curves: dict[str, list[float]]
    n_frames: int


def _species_pairs(symbols: Sequence[str]) -> list[tuple[str, str]]:
    species = sorted(set(symbols))
    return list(itertools.combinations_with_replacement(species, 2))


def rdf(
    images: Sequence[Atoms] | Atoms,
    *,
    rmax: float = 6.0,
    nbins: int = 300,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> DistributionResult:
    """Partial and total radial distribution functions averaged over ``images``.

    Parameters
    ----------
    images
        Frames of a trajectory (or one structure), periodic.
    rmax
        Largest distance (Å).
    nbins
        Number of bins between 0 and ``rmax``.
    pairs
        Species pairs; default all pairs of the species present.
    """
    images = [images] if isinstance(images, Atoms) else list(images)
    if not images:
        raise DataError("rdf: no frames given")
    edges = np.linspace(0.0, rmax, nbins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    symbols = np.asarray(images[0].get_chemical_symbols())
    pairs = list(pairs) if pairs else _species_pairs(symbols.tolist())
    acc = {f"{a}-{b}": np.zeros(nbins) for a, b in pairs}
    acc["all"] = np.zeros(nbins)
    for atoms in images:
        volume = atoms.get_volume()
        i, j, d = neighbor_list("ijd", atoms, rmax)
        sym = np.asarray(atoms.get_chemical_symbols())
        n = len(atoms)
        hist = np.histogram(d, bins=edges)[0]
        acc["all"] += hist / (n * (n - 1) / volume * shell)
        for a, b in pairs:
            na, nb = int(np.sum(sym == a)), int(np.sum(sym == b))
            nb_eff = nb - 1 if a == b else nb
            if na == 0 or nb_eff <= 0:
                continue
            mask = (sym[i] == a) & (sym[j] == b)
            acc[f"{a}-{b}"] += np.histogram(d[mask], bins=edges)[0] / (na * nb_eff / volume * shell)
    return DistributionResult(
        kind="rdf", x=centres.tolist(), curves={k: (v / len(images)).tolist() for k, v in acc.items()},
        n_frames=len(images),
    )


def adf(
    images: Sequence[Atoms] | Atoms, *, cutoff: float = 3.0, nbins: int = 180, centres: Sequence[str] | None = None
) -> DistributionResult:
    """Angular distribution functions B–A–C for neighbours within ``cutoff`` (Å), averaged over ``images``.

    Parameters
    ----------
    images
        Frames (or one structure), periodic.
    cutoff
        Neighbour cutoff (Å), the same for all species (take the first minimum of the RDF).
    nbins
        Bins between 0 and 180 degrees.
    centres
        Centre species; default all.
    """
    images = [images] if isinstance(images, Atoms) else list(images)
    if not images:
        raise DataError("adf: no frames given")
    edges = np.linspace(0.0, 180.0, nbins + 1)
    acc: dict[str, np.ndarray] = {}
    for atoms in images:
        sym = np.asarray(atoms.get_chemical_symbols())
        i, j, vec = neighbor_list("ijD", atoms, cutoff)
        order = np.argsort(i, kind="stable")
        i, j, vec = i[order], j[order], vec[order]
        starts = np.searchsorted(i, np.arange(len(atoms) + 1))
        for c in range(len(atoms)):
            if centres is not None and sym[c] not in centres:
                continue
            lo, hi = starts[c], starts[c + 1]
            if hi - lo < 2:
                continue
            v = vec[lo:hi]
            u = v / np.linalg.norm(v, axis=1)[:, None]
            a_idx, b_idx = np.triu_indices(hi - lo, k=1)
            cosang = np.clip(np.einsum("ij,ij->i", u[a_idx], u[b_idx]), -1.0, 1.0)
            angles = np.degrees(np.arccos(cosang))
            nb = sym[j[lo:hi]]
            first, second = nb[a_idx], nb[b_idx]
            swap = first > second
            lo_sym, hi_sym = np.where(swap, second, first), np.where(swap, first, second)
            for key in set(zip(lo_sym.tolist(), hi_sym.tolist(), strict=True)):
                mask = (lo_sym == key[0]) & (hi_sym == key[1])
                name = f"{key[0]}-{sym[c]}-{key[1]}"
                acc.setdefault(name, np.zeros(nbins))
                acc[name] += np.histogram(angles[mask], bins=edges)[0]
    width = edges[1] - edges[0]
    curves = {k: (v / v.sum() / width).tolist() for k, v in acc.items() if v.sum() > 0}
    return DistributionResult(
        kind="adf", x=(0.5 * (edges[1:] + edges[:-1])).tolist(), curves=curves, n_frames=len(images)
    )


def first_peak(x: Sequence[float], y: Sequence[float], *, min_height: float | None = None,
               smooth_bins: float = 0.0) -> float | None:
    """Position of the first peak of ``y(x)`` (parabolic refinement over the three highest-bin points).

    Parameters
    ----------
    x, y
        A distribution on a uniform grid.
    min_height
        Smallest peak height; default 10% of the maximum (ignores noise at short distance).
    smooth_bins
        Width (in bins) of a Gaussian the curve is smoothed with first (0: none).  A histogram of a few MD frames
        is noisy bin to bin; smoothing both curves of a comparison alike keeps the peak estimate from following
        the noise.
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if smooth_bins > 0 and ya.size > 3:
        from scipy.ndimage import gaussian_filter1d

        ya = gaussian_filter1d(ya, smooth_bins, mode="constant")
    if ya.size < 3 or not np.any(ya > 0):
        return None
    height = 0.1 * ya.max() if min_height is None else min_height
    padded = np.concatenate([[0.0], ya, [0.0]])  # a peak in the first or last bin counts too
    peaks, _ = find_peaks(padded, height=height)
    if peaks.size == 0:
        return None
    k = int(peaks[0]) - 1
    if 0 < k < ya.size - 1:
        y0, y1, y2 = ya[k - 1], ya[k], ya[k + 1]
        denom = y0 - 2 * y1 + y2
        if denom != 0:
            shift = 0.5 * (y0 - y2) / denom
            return float(xa[k] + shift * (xa[1] - xa[0]))
    return float(xa[k])


class DistributionComparison(BaseModel):
    """Model against reference distributions.

    Parameters
    ----------
    kind
        ``rdf`` (Å) or ``adf`` (degrees).
    model_peaks, reference_peaks
        First-peak positions per curve.
    peak_shifts
        Model minus reference first-peak position per curve.
    peak_rmse
        RMSE of the first-peak shifts over curves present in both (Å or degrees).
    integrated_abs_difference
        ∫|model - reference| dx per curve (RDF: Å; ADF: dimensionless, curves normalised to unit area).
    """

    kind: str
    model_peaks: dict[str, float | None]
    reference_peaks: dict[str, float | None]
    peak_shifts: dict[str, float]
    peak_rmse: float | None
    integrated_abs_difference: dict[str, float]


def compare_distributions(model: DistributionResult, reference: DistributionResult, *,
                          smooth_bins: float = 0.0) -> DistributionComparison:
    """Compare two distributions on the same grid (first peaks and integrated absolute difference).

    ``smooth_bins``: Gaussian smoothing (bins) of both curves before their first peaks are located.
    """
    if model.kind != reference.kind or not np.allclose(model.x, reference.x):
        raise DataError(f"cannot compare {model.kind} and {reference.kind} on different grids: use the same rmax/nbins")
    x = np.asarray(model.x)
    dx = float(x[1] - x[0])
    common = sorted(set(model.curves) & set(reference.curves))
    mp = {k: first_peak(x, model.curves[k], smooth_bins=smooth_bins) for k in model.curves}
    rp = {k: first_peak(x, reference.curves[k], smooth_bins=smooth_bins) for k in reference.curves}
    shifts = {k: mp[k] - rp[k] for k in common if mp.get(k) is not None and rp.get(k) is not None}  # type: ignore[operator]
    per_pair = [v for k, v in shifts.items() if k != "all"] or list(shifts.values())
    integrated = {
        k: float(np.sum(np.abs(np.asarray(model.curves[k]) - np.asarray(reference.curves[k]))) * dx) for k in common
    }
    return DistributionComparison(
        kind=model.kind,
        model_peaks=mp,
        reference_peaks=rp,
        peak_shifts=shifts,
        peak_rmse=float(np.sqrt(np.mean(np.square(per_pair)))) if per_pair else None,
        integrated_abs_difference=integrated,
    )


def plot_distributions(results: dict[str, DistributionResult], title: str = "") -> object:
    """Overlay curves of several sources (``{"model": ..., "reference": ...}``), one panel per curve; a Figure."""
    from mlipflow.benchmark.plotting import new_figure

    names = sorted(set().union(*(r.curves for r in results.values())))
    names = [n for n in names if n != "all"] or names
    names = names[:6]
    fig, axes = new_figure(len(names), width=3.5)
    for ax, name in zip(axes, names, strict=True):
        for label, res in results.items():
            if name in res.curves:
                ax.plot(res.x, res.curves[name], label=label)
        ax.set_title(name)
        ax.set_xlabel("r (Å)" if next(iter(results.values())).kind == "rdf" else "angle (°)")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
