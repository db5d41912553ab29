"""When is a campaign done?  A pure decision from one iteration's figures (stored with the iteration)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlipflow.campaign.schemas import Decision


class ConvergenceCriteria(BaseModel):
    """Targets of a campaign.

    Parameters
    ----------
    accurate_ratio
        Per structure family and at every sampled temperature, the fraction of explored frames whose
        committee force spread is below the lower trust bound must reach this (dpgen's criterion).
    force_rmse, energy_rmse
        Optional targets on the committee's test-set errors (eV/Å, eV/atom; validation errors when the
        dataset has no test split).
    min_frames
        Explored frames a family needs at a temperature before its ratio counts.
    max_iterations
        Exploration iterations at most.
    label_budget
        Labels (reference calculations) at most over the whole campaign.
    """

    model_config = ConfigDict(extra="forbid")

    accurate_ratio: float = Field(0.99, gt=0, le=1)
    force_rmse: float | None = Field(None, gt=0)
    energy_rmse: float | None = Field(None, gt=0)
    min_frames: int = Field(10, ge=1)
    max_iterations: int = Field(5, ge=1)
    label_budget: int = Field(1000, ge=1)


def _walker_key(walker: dict[str, Any]) -> tuple[str, str]:
    return str(walker.get("family") or "unknown"), str(walker.get("temperature_label") or "unknown")


def decide(
    criteria: ConvergenceCriteria,
    *,
    iteration: int,
    trust_report: dict[str, dict[str, float]],
    labels_so_far: int,
    errors: dict[str, Any] | None = None,
    trust_by_temperature: dict[str, dict[str, dict[str, float]]] | None = None,
    walkers: list[dict[str, Any]] | None = None,
) -> Decision:
    """Decide after an exploration iteration: ``converged``, ``max_iterations``, ``label_budget`` or ``continue``.

    Parameters
    ----------
    trust_report
        Per family (and ``all``) counts and ratios of accurate / candidate / failed explored frames.
    labels_so_far
        Reference labels made by the campaign so far.
    errors
        Test-set (else validation) errors of the current committee (``rmse_f`` eV/Å, ``rmse_e_per_atom``
        eV/atom), if known.
    trust_by_temperature
        Per family, per sampled temperature (``'900 K'``) the same counts and ratios; every one must reach
        the target.
    walkers
        The iteration's MD walkers (``family``, ``temperature_label``, ``stop_reason``): a family at a
        temperature with a walker that did not complete (stopped by a stability monitor, by the uncertainty
        bound, or by an error) cannot count as converged, whatever its ratio.

    Returns
    -------
    Decision
        ``decision``, ``reason`` and the figures it was taken on.
    """
    families = {f: r for f, r in trust_report.items() if f != "all"}
    ratios = {f: float(r.get("accurate_ratio", 0.0)) for f, r in families.items()}
    by_temperature = {f"{f} at {t}": float(r.get("accurate_ratio", 0.0))
                      for f, temps in (trust_by_temperature or {}).items() for t, r in temps.items()}
    frames = {f"{f} at {t}": int(r.get("n", 0)) for f, temps in (trust_by_temperature or {}).items()
              for t, r in temps.items()}
    frames.update({f: int(r.get("n", 0)) for f, r in families.items() if f not in (trust_by_temperature or {})})
    # a family sampled at several temperatures is judged (and reported) at each of them
    judged = {**{f: r for f, r in ratios.items() if f not in (trust_by_temperature or {})}, **by_temperature}
    blocked: dict[str, str] = {}
    stopped: dict[tuple[str, str], list[str]] = {}
    totals: dict[tuple[str, str], int] = {}
    for w in walkers or []:
        key = _walker_key(w)
        totals[key] = totals.get(key, 0) + 1
        if str(w.get("stop_reason", "completed")) != "completed":
            stopped.setdefault(key, []).append(str(w.get("stop_reason")))
    for (fam, temp), reasons in sorted(stopped.items()):
        label = f"{fam} at {temp}" if f"{fam} at {temp}" in judged or fam in (trust_by_temperature or {}) else fam
        blocked[label] = (f"{len(reasons)} of {totals[(fam, temp)]} walkers stopped early "
                          f"({', '.join(sorted(set(reasons)))})")
        judged.setdefault(label, 0.0)
    for label, n in frames.items():
        if n < criteria.min_frames and label in judged:
            blocked.setdefault(label, f"{n} explored frames < min_frames {criteria.min_frames}")
    short = {f: r for f, r in judged.items() if r < criteria.accurate_ratio}
    error_problems = []
    errors = dict(errors or {})
    if criteria.force_rmse is not None and (errors.get("rmse_f") is None or errors["rmse_f"] > criteria.force_rmse):
        error_problems.append(f"force RMSE {_fmt(errors.get('rmse_f'))} eV/Å > target {criteria.force_rmse:g} "
                              f"({errors.get('split', 'no')} split)")
    if criteria.energy_rmse is not None and (
        errors.get("rmse_e_per_atom") is None or errors["rmse_e_per_atom"] > criteria.energy_rmse
    ):
        error_problems.append(f"energy RMSE {_fmt(errors.get('rmse_e_per_atom'))} eV/atom > target "
                              f"{criteria.energy_rmse:g} ({errors.get('split', 'no')} split)")
    figures = {"iteration": iteration, "accurate_ratio": ratios, "accurate_ratio_by_temperature": by_temperature,
               "frames": frames, "blocked": blocked, "labels_so_far": labels_so_far, "errors": errors,
               "targets": criteria.model_dump()}
    if families and not short and not blocked and not error_problems:
        met = [f"accurate ratio >= {criteria.accurate_ratio} in every family at every temperature ({ratios})"]
        if criteria.force_rmse is not None or criteria.energy_rmse is not None:
            met.append(f"errors within targets ({errors.get('split')} split: F {_fmt(errors.get('rmse_f'))} eV/Å, "
                       f"E {_fmt(errors.get('rmse_e_per_atom'))} eV/atom)")
        return Decision(decision="converged", reason="; ".join(met), **figures)
    why = ([f"{f}: {blocked[f]}" for f in sorted(blocked)]
           + [f"{f}: accurate ratio {r:.3f} < {criteria.accurate_ratio}" for f, r in short.items() if f not in blocked]
           + error_problems)
    if iteration >= criteria.max_iterations:
        return Decision(decision="max_iterations", reason=f"reached {criteria.max_iterations} iterations; "
                        + ("; ".join(why) or "no explored frames"), **figures)
    if labels_so_far >= criteria.label_budget:
        return Decision(decision="label_budget", reason=f"{labels_so_far} labels >= budget {criteria.label_budget}; "
                        + ("; ".join(why) or "no explored frames"), **figures)
    return Decision(decision="continue", reason="; ".join(why) or "no explored frames", **figures)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4g}"
