"""Stability monitors for MD trajectories: the failure modes of MLIP-MD, caught at the frame where they start.

Each monitor is fed the frames of a trajectory in order (``reset`` with the first frame, then ``check`` with
every frame, the first one included) and returns a :class:`Verdict` when it fires.  They work on any
trajectory: online inside :func:`~mlipflow.sampling.md.run_md`, or afterwards with :func:`check_trajectory`
on a stored or imported trajectory.

Monitors (science.md F5: voids, ballistic atoms, overlapping atoms, runaway heating):

* :class:`MinDistanceMonitor` - two atoms closer than a per-pair floor (Å);
* :class:`DensityDriftMonitor` - density drifted by more than a relative bound from the first frame;
* :class:`VoidMonitor` - the largest empty sphere (grid estimate) grew beyond the first frame's by a margin (Å);
* :class:`BallisticMonitor` - an atom moved further between two consecutive frames than a per-species bound (Å);
* :class:`TemperatureMonitor` - instantaneous temperature above a bound for several frames (K).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, chemical_symbols
from ase.neighborlist import neighbor_list
from ase.units import _amu
from monty.json import MSONable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """What a monitor found.

    Attributes
    ----------
    monitor
        Name of the monitor (``min_distance``, ``density_drift``, ``void``, ``ballistic``, ``temperature``).
    fired
        Whether the failure was seen.
    frame
        Index of the first frame where it was seen (``None`` if it did not fire).
    value
        The measured quantity at that frame (units in ``message``).
    message
        Human explanation naming atoms, species and thresholds.
    """

    monitor: str
    fired: bool
    frame: int | None = None
    value: float | None = None
    message: str = ""

    def as_dict(self) -> dict:
        return {"monitor": self.monitor, "fired": self.fired, "frame": self.frame, "value": self.value,
                "message": self.message}


class Monitor(Protocol):
    """A stability monitor: ``reset`` with the first frame, then ``check`` every frame in order."""

    name: str

    def reset(self, atoms: Atoms) -> None: ...

    def check(self, atoms: Atoms, frame: int) -> Verdict | None: ...


def _pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@dataclass
class MinDistanceMonitor(MSONable):
    """Fires when two atoms come closer than a per-pair floor.

    Parameters
    ----------
    floors
        Minimum allowed distance per element pair (Å), keyed ``"Li-O"`` or ``("Li", "O")``; order is free.
    covalent_fraction
        For pairs not in ``floors``: floor = this fraction of the sum of ASE's covalent radii, and at least
        1.35 Å between two anions (:func:`mlipflow.structures.bonds.default_pair_floor`).
    """

    floors: dict[Any, float] = field(default_factory=dict)
    covalent_fraction: float = 0.5
    name: str = "min_distance"

    def __post_init__(self) -> None:
        pairs = {_pair_key(*(k.split("-") if isinstance(k, str) else k)): float(v) for k, v in self.floors.items()}
        self.floors = {f"{a}-{b}": v for (a, b), v in pairs.items()}  # JSON-friendly keys
        self._floors = pairs

    def floor(self, a: str, b: str) -> float:
        """Floor of the pair (a, b) (Å)."""
        from mlipflow.structures.bonds import default_pair_floor

        key = _pair_key(a, b)
        if key in self._floors:
            return self._floors[key]
        return default_pair_floor(a, b, self.covalent_fraction)

    def reset(self, atoms: Atoms) -> None:
        symbols = sorted(set(atoms.get_chemical_symbols()))
        zs = sorted(set(atoms.numbers))
        n = max(zs) + 1
        self._table = np.zeros((n, n))
        for a, b in itertools.combinations_with_replacement(symbols, 2):
            za, zb = chemical_symbols.index(a), chemical_symbols.index(b)
            self._table[za, zb] = self._table[zb, za] = self.floor(a, b)
        self._cutoff = float(self._table.max())

    def check(self, atoms: Atoms, frame: int) -> Verdict | None:
        if len(atoms) < 2 or self._cutoff <= 0:
            return None
        i, j, d = neighbor_list("ijd", atoms, self._cutoff)
        if not len(d):
            return None
        z = atoms.numbers
        ratio = d / self._table[z[i], z[j]]
        k = int(np.argmin(ratio))
        if ratio[k] >= 1.0:
            return None
        a, b = atoms[i[k]].symbol, atoms[j[k]].symbol
        return Verdict(self.name, True, frame, float(d[k]),
                       f"atoms {i[k]} ({a}) and {j[k]} ({b}) are {d[k]:.3f} Å apart, below the {a}-{b} floor "
                       f"of {self.floor(a, b):.3f} Å")


def density(atoms: Atoms) -> float:
    """Mass density (g/cm³)."""
    mass_g = atomic_masses[atoms.numbers].sum() * _amu * 1e3
    return float(mass_g / (atoms.get_volume() * 1e-24))


@dataclass
class DensityDriftMonitor(MSONable):
    """Fires when the density drifts by more than ``max_relative_drift`` from the first frame.

    Parameters
    ----------
    max_relative_drift
        Allowed ``|rho / rho_0 - 1|`` (dimensionless; 0.15 = 15 %).
    """

    max_relative_drift: float = 0.15
    name: str = "density_drift"

    def reset(self, atoms: Atoms) -> None:
        self._rho0 = density(atoms) if atoms.cell.rank == 3 else None

    def check(self, atoms: Atoms, frame: int) -> Verdict | None:
        if self._rho0 is None or atoms.cell.rank != 3:
            return None
        rho = density(atoms)
        drift = rho / self._rho0 - 1.0
        if abs(drift) <= self.max_relative_drift:
            return None
        return Verdict(self.name, True, frame, float(drift),
                       f"density {rho:.3f} g/cm³ drifted by {100 * drift:+.1f} % from {self._rho0:.3f} g/cm³ "
                       f"(bound {100 * self.max_relative_drift:.0f} %)")


def vacuum_axes(atoms: Atoms, min_gap: float = 5.0) -> dict[int, float]:
    """Cell axes along which the atoms leave an empty gap wider than ``min_gap`` (Å): axis -> gap width (Å)."""
    if atoms.cell.rank != 3 or len(atoms) == 0:
        return {}
    cell = atoms.cell.array
    vol = abs(np.linalg.det(cell))
    frac = atoms.get_scaled_positions(wrap=True)
    out = {}
    for axis in range(3):
        width = vol / np.linalg.norm(np.cross(cell[(axis + 1) % 3], cell[(axis + 2) % 3]))
        z = np.sort(frac[:, axis])
        gap = float(np.max(np.diff(np.concatenate([z, [z[0] + 1.0]]))) * width)
        if gap > min_gap:
            out[axis] = gap
    return out


def material_region(atoms: Atoms, min_gap: float = 5.0, margin: float = 2.0) -> list[tuple[float, float] | None]:
    """Per axis, the fractional interval (lo, hi) holding the material, shrunk by ``margin`` Å at both surfaces,
    for axes with vacuum (see :func:`vacuum_axes`); ``None`` for fully periodic axes."""
    cell = atoms.cell.array
    vol = abs(np.linalg.det(cell))
    frac = atoms.get_scaled_positions(wrap=True)
    region: list[tuple[float, float] | None] = [None, None, None]
    for axis in vacuum_axes(atoms, min_gap):
        width = vol / np.linalg.norm(np.cross(cell[(axis + 1) % 3], cell[(axis + 2) % 3]))
        z = np.sort(frac[:, axis])
        gaps = np.diff(np.concatenate([z, [z[0] + 1.0]]))
        k = int(np.argmax(gaps))  # the vacuum runs from z[k] up to the next atom (cyclically)
        lo, hi = (z[0], z[-1]) if k == len(z) - 1 else (z[k + 1], z[k] + 1.0)
        pad = margin / width
        region[axis] = (lo + pad, max(lo + pad, hi - pad))
    return region


def largest_empty_sphere(atoms: Atoms, spacing: float = 0.4,
                         region: Sequence[tuple[float, float] | None] | None = None) -> tuple[float, np.ndarray]:
    """Grid estimate of the largest empty sphere of a periodic cell (inside the material, if ``region`` is given).

    Parameters
    ----------
    atoms
        A periodic frame.
    spacing
        Grid spacing (Å); the estimate is within about ``spacing * sqrt(3) / 2`` of the true radius.
    region
        Per axis a fractional interval (lo, hi) to search (e.g. :func:`material_region` of a slab, so that the
        vacuum is not the "void"), or ``None`` for the whole axis.

    Returns
    -------
    radius, centre
        Distance from the emptiest grid point to its nearest atom (Å), and that point (Å).
    """
    from scipy.spatial import cKDTree

    cell = atoms.cell.array
    lengths = atoms.cell.lengths()
    region = list(region) if region is not None else [None, None, None]
    axes = []
    for i in range(3):
        lo, hi = region[i] if region[i] is not None else (0.0, 1.0)
        k = max(int(np.ceil(lengths[i] * (hi - lo) / spacing)), 1)
        axes.append(lo + (hi - lo) * np.arange(k) / k if region[i] is None else np.linspace(lo, hi, k + 1))
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    points = grid @ cell
    frac = atoms.get_scaled_positions(wrap=True)
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3)))
    images = (frac[None, :, :] + shifts[:, None, :]).reshape(-1, 3) @ cell
    dist, _ = cKDTree(images).query(points, k=1)
    k = int(np.argmax(dist))
    return float(dist[k]), points[k]


@dataclass
class VoidMonitor(MSONable):
    """Fires when the largest empty sphere grows more than ``margin`` beyond the first frame's.

    Parameters
    ----------
    margin
        Allowed growth of the largest empty-sphere radius over the first frame's (Å).
    spacing
        Grid spacing of the estimate (Å).
    every
        Check every ``every``-th frame only (the grid search costs about 10 ms for a 500-atom cell).
    vacuum_gap
        An empty gap wider than this (Å) along a cell axis is vacuum (a slab): the search stays inside the
        material, ``surface_margin`` (Å) away from its surfaces, so a cavity in a slab is seen.
    surface_margin
        Distance (Å) from the slab surfaces not searched (surface atoms move most).
    """

    margin: float = 1.0
    spacing: float = 0.4
    every: int = 1
    vacuum_gap: float = 5.0
    surface_margin: float = 2.0
    name: str = "void"

    def _search(self, atoms: Atoms) -> tuple[float, np.ndarray]:
        region = material_region(atoms, self.vacuum_gap, self.surface_margin)
        return largest_empty_sphere(atoms, self.spacing, region)

    def reset(self, atoms: Atoms) -> None:
        self._r0 = self._search(atoms)[0] if atoms.cell.rank == 3 else None

    def check(self, atoms: Atoms, frame: int) -> Verdict | None:
        if self._r0 is None or frame % self.every:
            return None
        radius, centre = self._search(atoms)
        if radius <= self._r0 + self.margin:
            return None
        return Verdict(self.name, True, frame, radius,
                       f"empty sphere of radius {radius:.2f} Å at {np.round(centre, 2).tolist()} Å "
                       f"(first frame {self._r0:.2f} Å, margin {self.margin:.2f} Å)")


@dataclass
class BallisticMonitor(MSONable):
    """Fires when an atom jumps further between two consecutive frames than its species' bound.

    Displacements use the minimum image, so wrapping through the cell is not a jump.

    Parameters
    ----------
    max_displacement
        Bound per species (Å per frame interval), e.g. ``{"Li": 2.0}``.
    default
        Bound for species not listed (Å).
    """

    max_displacement: dict[str, float] = field(default_factory=dict)
    default: float = 1.5
    name: str = "ballistic"

    def reset(self, atoms: Atoms) -> None:
        self._prev = atoms.get_scaled_positions(wrap=False) if atoms.cell.rank == 3 else atoms.positions.copy()
        self._bounds = np.array([self.max_displacement.get(s, self.default) for s in atoms.get_chemical_symbols()])

    def check(self, atoms: Atoms, frame: int) -> Verdict | None:
        if atoms.cell.rank == 3:
            frac = atoms.get_scaled_positions(wrap=False)
            dfrac = frac - self._prev
            dfrac -= np.round(dfrac) * atoms.pbc
            disp = np.linalg.norm(dfrac @ atoms.cell.array, axis=1)
            self._prev = frac
        else:
            disp = np.linalg.norm(atoms.positions - self._prev, axis=1)
            self._prev = atoms.positions.copy()
        excess = disp / self._bounds
        k = int(np.argmax(excess))
        if excess[k] <= 1.0:
            return None
        sym = atoms[k].symbol
        return Verdict(self.name, True, frame, float(disp[k]),
                       f"atom {k} ({sym}) moved {disp[k]:.2f} Å since the previous frame "
                       f"(bound for {sym}: {self._bounds[k]:.2f} Å)")


def frame_temperature(atoms: Atoms) -> float | None:
    """Instantaneous temperature (K) from momenta, else ``atoms.info["temperature"]``, else ``None``."""
    if atoms.has("momenta"):
        return float(atoms.get_temperature())
    value = atoms.info.get("temperature")
    return None if value is None else float(value)


@dataclass
class TemperatureMonitor(MSONable):
    """Fires when the instantaneous temperature stays above a bound for ``patience`` consecutive frames.

    Parameters
    ----------
    max_temperature
        Absolute bound (K); if ``None``, ``factor`` times the target (``atoms.info["target_temperature"]``)
        or, without a target, times the first frame's temperature.
    factor
        Relative bound used when ``max_temperature`` is not given.
    patience
        Consecutive frames above the bound before firing (thermal fluctuations of small cells are large).
    """

    max_temperature: float | None = None
    factor: float = 2.0
    patience: int = 3
    name: str = "temperature"

    def reset(self, atoms: Atoms) -> None:
        self._count = 0
        self._first: int | None = None
        self._t0 = frame_temperature(atoms)

    def _bound(self, atoms: Atoms) -> float | None:
        if self.max_temperature is not None:
            return self.max_temperature
        target = atoms.info.get("target_temperature", self._t0)
        return None if not target else self.factor * float(target)

    def check(self, atoms: Atoms, frame: int) -> Verdict | None:
        temp, bound = frame_temperature(atoms), self._bound(atoms)
        if temp is None or bound is None or temp <= bound:
            self._count, self._first = 0, None
            return None
        if self._count == 0:
            self._first = frame
        self._count += 1
        if self._count < self.patience:
            return None
        return Verdict(self.name, True, self._first, temp,
                       f"temperature {temp:.0f} K above {bound:.0f} K for {self._count} frames since frame "
                       f"{self._first}")


def default_monitors() -> list[Monitor]:
    """The default set: overlap, density drift, voids (every 5th frame), ballistic atoms, temperature runaway."""
    return [MinDistanceMonitor(), DensityDriftMonitor(), VoidMonitor(every=5), BallisticMonitor(),
            TemperatureMonitor()]


class MonitorSet:
    """Runs several monitors on a stream of frames and keeps the first verdict of each.

    Parameters
    ----------
    monitors
        The monitors (default :func:`default_monitors`).
    """

    def __init__(self, monitors: Sequence[Monitor] | None = None) -> None:
        self.monitors = list(default_monitors() if monitors is None else monitors)
        self.verdicts: dict[str, Verdict] = {}
        self._started = False

    def check(self, atoms: Atoms, frame: int) -> list[Verdict]:
        """Feed one frame; return the verdicts that fired on it (each monitor fires once)."""
        if not self._started:
            for m in self.monitors:
                m.reset(atoms)
            self._started = True
        fired = []
        for m in self.monitors:
            if m.name in self.verdicts:
                continue
            verdict = m.check(atoms, frame)
            if verdict is not None and verdict.fired:
                self.verdicts[m.name] = verdict
                fired.append(verdict)
                logger.info("monitor %s fired at frame %d: %s", m.name, frame, verdict.message)
        return fired

    def summary(self) -> list[Verdict]:
        """One verdict per monitor: the first firing, or a "did not fire" verdict."""
        return [self.verdicts.get(m.name, Verdict(m.name, False, message="did not fire")) for m in self.monitors]


def check_trajectory(frames: Iterable[Atoms], monitors: Sequence[Monitor] | None = None,
                     stop_at_first: bool = False) -> list[Verdict]:
    """Run monitors over any trajectory.

    Parameters
    ----------
    frames
        Frames in time order (ASE Atoms; momenta or ``info["temperature"]`` for the temperature monitor).
    monitors
        Default :func:`default_monitors`.
    stop_at_first
        Stop reading frames when a first monitor fires.

    Returns
    -------
    list of Verdict
        One per monitor, in the order given.
    """
    mset = MonitorSet(monitors)
    for index, atoms in enumerate(frames):
        if mset.check(atoms, index) and stop_at_first:
            break
    return mset.summary()
