"""Trust-window classification of frames by committee force spread (dpgen's vocabulary).

A frame whose max atomic force spread (eV/Å) is below ``lower`` is *accurate* (the model already knows it),
above ``upper`` is *failed* (too far out: unphysical or a blown-up trajectory, labeling it wastes DFT), and in
between is a *candidate* for labeling.  Windows can differ per structure family (interfaces and melts are
harder than bulk), and the ratios are reported per family, the way dpgen reports its convergence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from monty.json import MSONable

from mlipflow.errors import ConfigError

Category = Literal["accurate", "candidate", "failed"]
CATEGORIES: tuple[Category, ...] = ("accurate", "candidate", "failed")


@dataclass(frozen=True)
class TrustWindow(MSONable):
    """Bounds on the max force spread (eV/Å): ``[lower, upper]``.

    Parameters
    ----------
    lower
        Below: accurate (eV/Å).
    upper
        Above: failed (eV/Å).
    """

    lower: float = 0.05
    upper: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.lower < self.upper:
            raise ConfigError(f"trust window needs 0 <= lower < upper (eV/Å), got [{self.lower}, {self.upper}]")


@dataclass
class TrustWindowSelector(MSONable):
    """Classify frames as accurate / candidate / failed with a trust window per family.

    Parameters
    ----------
    default
        Window for families without their own (eV/Å; multiples of the committee's validation spread when
        ``mode="relative"``).
    per_family
        Windows by structure family name (``bulk``, ``slab``, ``interface``, ``amorphous``, ...).
    mode
        ``absolute``: bounds in eV/Å.  ``relative``: bounds as multiples of the committee's median largest-atom
        force spread on its own validation frames (per family when the family has at least
        ``min_family_frames`` validation frames, else over all of them); :meth:`scaled` turns them into eV/Å.
    min_family_frames
        Validation frames a family needs for its own scale in relative mode.
    """

    default: TrustWindow = field(default_factory=TrustWindow)
    per_family: dict[str, TrustWindow] = field(default_factory=dict)
    mode: Literal["absolute", "relative"] = "absolute"
    min_family_frames: int = 3

    def scaled(self, spread: dict[str, float], families: list[str]) -> tuple[TrustWindowSelector, dict[str, float]]:
        """Absolute windows (eV/Å) from relative ones and a committee's validation spread statistics.

        Parameters
        ----------
        spread
            ``p50`` (eV/Å) and ``n_frames``, and per family ``p50@<family>`` and ``n_frames@<family>``
            (:func:`~mlipflow.training.committee.spread_statistics`).
        families
            Families to scale.

        Returns
        -------
        selector, units
            The absolute selector and the unit (eV/Å) used for each family.

        Raises
        ------
        ConfigError
            Relative mode without the committee's validation spread (no validation split).
        """
        if self.mode == "absolute":
            return self, {}
        if not spread or not spread.get("p50"):
            raise ConfigError(
                "selection trust mode 'relative' needs the committee's force spread on its validation frames, "
                "and the committee has none (its dataset version has no validation split): give validation "
                "frames (splits: valid > 0) or use absolute trust bounds (eV/Å)")
        units: dict[str, float] = {}
        windows: dict[str, TrustWindow] = {}
        for fam in sorted(set(families)):
            own = spread.get(f"p50@{fam}")
            enough = spread.get(f"n_frames@{fam}", 0) >= self.min_family_frames
            unit = float(own) if own and enough else float(spread["p50"])
            units[fam] = unit
            win = self.window(fam)
            windows[fam] = TrustWindow(lower=win.lower * unit, upper=win.upper * unit)
        default = TrustWindow(lower=self.default.lower * spread["p50"], upper=self.default.upper * spread["p50"])
        return TrustWindowSelector(default=default, per_family=windows), units

    def window(self, family: str | None) -> TrustWindow:
        return self.per_family.get(family or "", self.default)

    def classify(self, max_force_spread: Sequence[float] | np.ndarray,
                 families: Sequence[str | None] | None = None) -> np.ndarray:
        """Category of each frame.

        Parameters
        ----------
        max_force_spread
            Max atomic force spread per frame (eV/Å); NaN counts as failed.
        families
            Family per frame (default: all in the default window).

        Returns
        -------
        numpy.ndarray of str
            ``accurate``, ``candidate`` or ``failed`` per frame.
        """
        spread = np.asarray(max_force_spread, dtype=float)
        fams = [None] * len(spread) if families is None else list(families)
        if len(fams) != len(spread):
            raise ConfigError(f"{len(fams)} families given for {len(spread)} frames")
        lower = np.array([self.window(f).lower for f in fams]) if len(spread) else np.zeros(0)
        upper = np.array([self.window(f).upper for f in fams]) if len(spread) else np.zeros(0)
        out = np.full(len(spread), "candidate", dtype=object)
        out[spread < lower] = "accurate"
        out[(spread > upper) | ~np.isfinite(spread)] = "failed"
        return out

    def report(self, categories: Sequence[str] | np.ndarray, families: Sequence[str | None] | None = None
               ) -> dict[str, dict[str, float]]:
        """Counts and ratios per family (and ``all``): ``{family: {accurate, candidate, failed, n, *_ratio}}``."""
        cats = np.asarray(categories, dtype=object)
        fams = np.asarray(["all" if families is None else (f or "unknown") for f in
                           (families if families is not None else [None] * len(cats))], dtype=object)
        out: dict[str, dict[str, float]] = {}
        for fam in [*sorted(set(fams.tolist()) - {"all"}), "all"]:
            mask = np.ones(len(cats), bool) if fam == "all" else fams == fam
            n = int(mask.sum())
            if fam != "all" and n == 0:
                continue
            entry: dict[str, float] = {"n": n}
            for c in CATEGORIES:
                k = int((cats[mask] == c).sum())
                entry[c] = k
                entry[f"{c}_ratio"] = k / n if n else 0.0
            out[fam] = entry
        return out
