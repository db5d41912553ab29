"""Does the committee's spread mean something?  Its predictions against the reference labels of its own picks.

Every explored frame stores the committee's mean energy and forces and the per-atom force spread
(:mod:`mlipflow.sampling.md`).  Once the picks are labeled, :func:`assess_picks` compares, per pick, the spread
the committee predicted with the error it actually made (largest atom, force RMSE, energy per atom), and
summarises: the Spearman rank correlation of spread and error, the median error/spread ratio (how much larger
the true error is than the spread), and the true error of the spot checks (frames the committee called
accurate).  These figures calibrate the trust window and say whether "accurate" is accurate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from mlipflow.data import Dataset
from mlipflow.sampling.trajectory import TrajectoryStore
from mlipflow.selection.schemas import PickAssessment, PickError, SelectionResult
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (``None`` for fewer than 3 pairs or a constant input)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def assess_picks(stores: Stores, selection: SelectionResult, frame_ids: Sequence[str],
                 iteration: int | None = None) -> PickAssessment:
    """Spread against true error of the labeled picks (``frame_ids`` in pick order; unlabeled ones are skipped)."""
    if len(frame_ids) != len(selection.picks):
        logger.warning("assessment: %d picks but %d frame ids; pairing the first ones", len(selection.picks),
                       len(frame_ids))
    tstore = TrajectoryStore(stores)
    dataset = Dataset(stores)
    labeled = {d["_id"] for d in stores.frames.find({"_id": {"$in": list(frame_ids)}, "status": "labeled"},
                                                    {"_id": 1})}
    predicted: dict[tuple[str, int], tuple[float | None, np.ndarray | None]] = {}
    by_traj: dict[str, list[int]] = {}
    for p in selection.picks:
        by_traj.setdefault(p.trajectory_id, []).append(p.frame)
    for tid, frames in by_traj.items():
        for atoms in tstore.iter_atoms(tid, sorted(set(frames))):
            calc = atoms.calc
            energy = calc.results.get("energy") if calc is not None else None
            forces = calc.results.get("forces") if calc is not None else None
            predicted[(tid, atoms.info["frame"])] = (energy, None if forces is None else np.asarray(forces))
    rows: list[PickError] = []
    for pick, fid in zip(selection.picks, frame_ids, strict=False):
        energy, forces = predicted.get((pick.trajectory_id, pick.frame), (None, None))
        if fid not in labeled or forces is None:
            continue
        frame = dataset.get(fid)
        ref_f = np.asarray(frame.forces, dtype=float)
        diff = forces - ref_f
        rows.append(PickError(
            frame_id=fid, family=pick.family, temperature=pick.temperature, category=pick.category,
            spot_check=pick.spot_check, max_force_spread=pick.max_force_spread,
            max_force_error=float(np.linalg.norm(diff, axis=1).max()), rmse_f=float(np.sqrt(np.mean(diff**2))),
            energy_error_per_atom=None if energy is None else float((energy - frame.energy) / frame.natoms)))
    with_spread = [r for r in rows if r.max_force_spread is not None]
    rho = spearman([r.max_force_spread for r in with_spread], [r.max_force_error for r in with_spread])
    ratios = [r.max_force_error / r.max_force_spread for r in with_spread if r.max_force_spread]
    checks = [r for r in rows if r.spot_check]
    out = PickAssessment(
        iteration=iteration, picks=rows, spearman=rho,
        error_over_spread=float(np.median(ratios)) if ratios else None,
        spot_check_max_error=max((r.max_force_error for r in checks), default=None),
        spot_check_rmse_f=float(np.sqrt(np.mean([r.rmse_f**2 for r in checks]))) if checks else None,
        summary={"n_assessed": len(rows), "n_spot_checks": len(checks),
                 "max_force_error_median": float(np.median([r.max_force_error for r in rows])) if rows else None,
                 "max_force_spread_median": float(np.median([r.max_force_spread for r in with_spread]))
                 if with_spread else None})
    logger.info("picks of iteration %s: spread vs error Spearman %s, error/spread %s, spot checks max error %s eV/Å",
                iteration, None if rho is None else round(rho, 2),
                None if out.error_over_spread is None else round(out.error_over_spread, 2),
                None if out.spot_check_max_error is None else round(out.spot_check_max_error, 3))
    return out
