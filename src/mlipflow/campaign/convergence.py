"""When is a campaign done?  A pure decision from one iteration's figures (stored with the iteration)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    max_iterations
        Exploration iterations at most.
    label_budget
        Labels (reference calculations) at most over the whole campaign.
    """

    model_config = ConfigDict(extra="forbid")

    accurate_ratio: float = Field(0.99, gt=0, le=1)
    force_rmse: float | None = Field(None, gt=0)
    energy_rmse: float | None = Field(None, gt=0)
    max_iterations: int = Field(5, ge=1)
    label_budget: int = Field(1000, ge=1)


def decide(
    criteria: ConvergenceCriteria,
    *,
    iteration: int,
    trust_report: dict[str, dict[str, float]],
    labels_so_far: int,
    errors: dict[str, float] | None = None,
    trust_by_temperature: dict[str, dict[str, dict[str, float]]] | None = None,
) -> dict[str, Any]:
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

    Returns
    -------
    dict
        ``decision``, ``reason`` and the figures it was taken on.
    """
    families = {f: r for f, r in trust_report.items() if f != "all"}
    ratios = {f: float(r.get("accurate_ratio", 0.0)) for f, r in families.items()}
    by_temperature = {f"{f} at {t}": float(r.get("accurate_ratio", 0.0))
                      for f, temps in (trust_by_temperature or {}).items() for t, r in temps.items()}
    # a family sampled at several temperatures is judged (and reported) at each of them
    judged = {**{f: r for f, r in ratios.items() if f not in (trust_by_temperature or {})}, **by_temperature}
    short = {f: r for f, r in judged.items() if r < criteria.accurate_ratio}
    error_problems = []
    errors = errors or {}
    if criteria.force_rmse is not None and (errors.get("rmse_f") is None or errors["rmse_f"] > criteria.force_rmse):
        error_problems.append(f"force RMSE {errors.get('rmse_f')} eV/Å > {criteria.force_rmse}")
    if criteria.energy_rmse is not None and (
        errors.get("rmse_e_per_atom") is None or errors["rmse_e_per_atom"] > criteria.energy_rmse
    ):
        error_problems.append(f"energy RMSE {errors.get('rmse_e_per_atom')} eV/atom > {criteria.energy_rmse}")
    figures = {"iteration": iteration, "accurate_ratio": ratios, "accurate_ratio_by_temperature": by_temperature,
               "labels_so_far": labels_so_far, "errors": errors}
    if families and not short and not error_problems:
        reason = f"accurate ratio >= {criteria.accurate_ratio} in every family at every temperature ({ratios})"
        return {"decision": "converged", "reason": reason, **figures}
    if iteration >= criteria.max_iterations:
        return {"decision": "max_iterations", "reason": f"reached {criteria.max_iterations} iterations", **figures}
    if labels_so_far >= criteria.label_budget:
        return {"decision": "label_budget",
                "reason": f"{labels_so_far} labels >= budget {criteria.label_budget}", **figures}
    why = [f"{f}: accurate ratio {r:.3f} < {criteria.accurate_ratio}" for f, r in short.items()] + error_problems
    return {"decision": "continue", "reason": "; ".join(why) or "no explored frames", **figures}
