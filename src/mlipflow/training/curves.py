"""Training curves from mace-torch's results file (``results/<tag>_train.txt``), and their PNG.

mace-torch writes one JSON object per line: ``mode="opt"`` per optimisation step (``loss``, ``epoch``) and
``mode="eval"`` per validation pass (``loss``, ``rmse_e_per_atom`` in eV/atom, ``rmse_f`` in eV/Å,
``rmse_stress`` in eV/Å³, ``epoch`` (``None`` before the first epoch) and ``head``).  A restarted run appends
to the same file, starting with a new ``epoch=None`` evaluation; for every epoch the newest values win.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

logger = logging.getLogger(__name__)
#: matplotlib is not thread-safe (committee members finish in parallel threads)
_PLOT_LOCK = threading.Lock()


class EpochPoint(BaseModel):
    """One epoch of one head.

    Parameters
    ----------
    epoch
        0-based epoch (``-1`` for the evaluation before any training).
    head
        Model head (``Default`` for a single-head model).
    train_loss
        Mean optimisation loss over the epoch's batches (dimensionless, mace's weighted loss).
    valid_loss
        Validation loss.
    rmse_e_per_atom
        Validation energy RMSE (eV/atom).
    rmse_f
        Validation force-component RMSE (eV/Å).
    rmse_stress
        Validation stress RMSE (eV/Å³) when stress is trained.
    """

    epoch: int
    head: str = "Default"
    train_loss: float | None = None
    valid_loss: float | None = None
    rmse_e_per_atom: float | None = None
    rmse_f: float | None = None
    rmse_stress: float | None = None


class TrainingCurves(BaseModel):
    """Per-epoch curves of a training run.

    Parameters
    ----------
    points
        One :class:`EpochPoint` per (head, evaluated epoch), sorted by head and epoch.
    restarts
        How many times the run was resumed from a checkpoint.
    """

    points: list[EpochPoint] = Field(default_factory=list)
    restarts: int = 0

    @property
    def heads(self) -> list[str]:
        return sorted({p.head for p in self.points})

    def for_head(self, head: str = "Default", *, include_initial: bool = False) -> list[EpochPoint]:
        """Points of one head in epoch order (without the pre-training evaluation unless asked)."""
        return [p for p in self.points if p.head == head and (include_initial or p.epoch >= 0)]

    @property
    def last_epoch(self) -> int:
        """Largest completed epoch (0-based), -1 if none."""
        return max((p.epoch for p in self.points), default=-1)

    def has_nan(self) -> bool:
        """True if any loss or RMSE is NaN or infinite."""
        for p in self.points:
            for value in (p.train_loss, p.valid_loss, p.rmse_e_per_atom, p.rmse_f):
                if value is not None and not math.isfinite(value):
                    return True
        return False


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_results_lines(path: str | Path) -> list[dict[str, Any]]:
    """The JSON records of a mace-torch results file (a partial last line is skipped)."""
    records = []
    path = Path(path)
    if not path.is_file():
        return records
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            logger.debug("skipping unreadable line in %s: %.80s", path, line)
    return records


def parse_results(records: list[dict[str, Any]]) -> TrainingCurves:
    """Turn mace-torch results records into :class:`TrainingCurves` (newest value per epoch wins)."""
    segment = -1
    opt_losses: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    evals: dict[tuple[str, int], dict[str, Any]] = {}
    seen_initial_heads: set[str] = set()
    for rec in records:
        mode = rec.get("mode")
        epoch = rec.get("epoch")
        if mode == "eval":
            head = str(rec.get("head") or "Default")
            if epoch is None:
                if head in seen_initial_heads or not seen_initial_heads:
                    segment += 1
                    seen_initial_heads = set()
                seen_initial_heads.add(head)
                epoch = -1
            evals[(head, int(epoch))] = rec
        elif mode == "opt" and epoch is not None:
            loss = _num(rec.get("loss"))
            if loss is not None:
                opt_losses[int(epoch)][max(segment, 0)].append(loss)
    train_loss: dict[int, float] = {}
    for epoch, by_segment in opt_losses.items():
        losses = by_segment[max(by_segment)]
        train_loss[epoch] = sum(losses) / len(losses)
    points = []
    for (head, epoch), rec in sorted(evals.items()):
        points.append(
            EpochPoint(
                epoch=epoch,
                head=head,
                train_loss=train_loss.get(epoch),
                valid_loss=_num(rec.get("loss")),
                rmse_e_per_atom=_num(rec.get("rmse_e_per_atom")),
                rmse_f=_num(rec.get("rmse_f")),
                rmse_stress=_num(rec.get("rmse_stress")),
            )
        )
    return TrainingCurves(points=points, restarts=max(segment, 0))


def parse_results_file(path: str | Path) -> TrainingCurves:
    """:func:`parse_results` of a results file."""
    return parse_results(read_results_lines(path))


def plot_curves(curves: TrainingCurves, path: str | Path, title: str = "") -> Path:
    """Save loss and validation RMSE curves as a PNG (energy in meV/atom, forces in meV/Å); return the path."""
    with _PLOT_LOCK:
        return _plot_curves(curves, Path(path), title)


def _plot_curves(curves: TrainingCurves, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for head in curves.heads:
        pts = curves.for_head(head)
        epochs = [p.epoch for p in pts]
        axes[0].plot(epochs, [p.valid_loss for p in pts], "o-", ms=3, label=f"valid {head}")
        train = [(p.epoch, p.train_loss) for p in pts if p.train_loss is not None]
        if train and head == curves.heads[-1]:
            axes[0].plot(*zip(*train, strict=True), "s--", ms=3, label="train (all heads)")
        axes[1].plot(epochs, [1e3 * p.rmse_e_per_atom if p.rmse_e_per_atom is not None else None for p in pts],
                     "o-", ms=3, label=head)
        axes[2].plot(epochs, [1e3 * p.rmse_f if p.rmse_f is not None else None for p in pts], "o-", ms=3,
                     label=head)
    for ax, ylabel in zip(axes, ("loss", "valid RMSE E (meV/atom)", "valid RMSE F (meV/Å)"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
