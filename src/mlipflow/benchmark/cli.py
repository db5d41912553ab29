"""Command line of the benchmarks: ``mlipflow report NAME`` (to be wired into :mod:`mlipflow.cli`).

Wire either the function or the sub-app::

    from mlipflow.benchmark.cli import report_command
    app.command("report")(report_command)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Benchmarks and the HTML report.", no_args_is_help=True)


@app.command("report")
def report_command(
    name: Annotated[str, typer.Argument(help="Campaign name, model id, model name or dataset name.")],
    out: Annotated[Path | None, typer.Option(help="Output HTML file (default <MLIPFLOW_HOME>/reports/NAME.html).")]
    = None,
) -> None:
    """Write one self-contained HTML report (plots embedded) for a campaign or a model."""
    from mlipflow.benchmark.report import report

    path = report(name, out)
    typer.echo(f"wrote {path}")


def benchmark_command(
    name: Annotated[str, typer.Argument(help="Campaign name, or a registered model or committee id.")],
    campaign: Annotated[str | None, typer.Option(help="For a model id: the campaign whose labeler, cells and "
                                                      "settings to benchmark it with.")] = None,
    file: Annotated[Path | None, typer.Option(help="For a model id: a campaign file to take them from.")] = None,
) -> None:
    """Run the benchmark stage on a campaign's final committee or on any registered model; print the verdict."""
    from mlipflow.benchmark.runner import run_benchmark
    from mlipflow.storage import get_stores

    doc = run_benchmark(get_stores(), name, campaign=campaign, file=file)
    for line in benchmark_lines(doc):
        typer.echo(line)


def benchmark_lines(doc: dict) -> list[str]:
    """The benchmark figures and the verdict in plain lines (what ``mlipflow run`` and ``benchmark`` print)."""
    if not doc:
        return []
    verdict = doc.get("verdict") or {}
    lines = [f"benchmark of {doc.get('model')} against {doc.get('reference')}: "
             f"{'PASS' if verdict.get('passed') else 'FAIL'}"]
    for c in verdict.get("checks") or []:
        measured = c.get("measured")
        shown = "n/a" if measured is None else f"{measured:.4g}"
        target = c.get("target")
        target = f"{target:.4g}" if isinstance(target, (int, float)) else target
        lines.append(f"  {'pass' if c.get('passed') else 'FAIL'}  {c.get('name')}: {shown} {c.get('unit')} "
                     f"(target {target})")
    te = doc.get("trajectory_errors") or {}
    if te:
        lines.append(f"  MLMD test set ({te.get('n_frames')} frames): energy RMSE {te.get('rmse_e_meV_atom', 0):.2f} "
                     f"meV/atom, force RMSE {te.get('rmse_f_meV_A', 0):.1f} meV/Å (p95 {te.get('p95_f_meV_A', 0):.1f},"
                     f" max {te.get('max_f_meV_A', 0):.0f})")
    curve = [m for m in doc.get("learning_curve") or [] if m.get("kind") == "member"]
    if len(curve) > 1:
        lines.append("  force RMSE on the same test set by iteration: "
                     + ", ".join(f"{m.get('iteration')}: {m.get('rmse_f_meV_A', 0):.0f}" for m in curve) + " meV/Å")
    for p in doc.get("properties") or []:
        shifts = ", ".join(f"{k} {v:+.3f}" for k, v in (p.get("rdf_peak_shifts_A") or {}).items())
        lines.append(f"  RDF first peaks at {p.get('temperature_K'):g} K ({p.get('family')}): shifts {shifts} Å")
    for g in doc.get("gb_energy") or []:
        lines.append(f"  boundary energy {g.get('formula')}: model {g.get('model_J_m2'):.3f}, reference "
                     f"{g.get('reference_J_m2'):.3f} J/m²")
    return lines


def efficiency_command(
    file: Annotated[Path, typer.Argument(help="Campaign file (system, labeler, trainer and selection settings).")],
    budgets: Annotated[str | None, typer.Option(help="Cumulative label counts, comma separated (default 4,8,16).")]
    = None,
    seeds: Annotated[str | None, typer.Option(help="Seeds, comma separated (default 0,1,2).")] = None,
    strategies: Annotated[str | None, typer.Option(
        help="Comma separated subset of random,diversity,uncertainty,campaign (default all).")] = None,
    epochs: Annotated[int | None, typer.Option(help="MACE epochs per training (default 20).")] = None,
    pool_replicas: Annotated[int | None, typer.Option(help="Pool MD walkers per cell and temperature.")] = None,
    pool_steps: Annotated[int | None, typer.Option(help="Pool and test MD steps per walker.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Output JSON (default <MLIPFLOW_HOME>/reports/<campaign>-label_efficiency.json).")] = None,
) -> None:
    """Label efficiency: random, diversity-only, uncertainty-only and the campaign's selection on one pool."""
    import json
    import tempfile

    from mlipflow.benchmark.efficiency import (
        build_pool_and_test,
        efficiency_lines,
        labeler_e0s,
        run_efficiency,
        save_efficiency,
        settings_from_options,
    )
    from mlipflow.campaign.spec import load_campaign
    from mlipflow.storage import get_stores

    def ints(value: str | None, key: str) -> list[int] | None:
        if value is None:
            return None
        try:
            return [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            from mlipflow.errors import ConfigError

            raise ConfigError(f"--{key} {value!r}: expected integers separated by commas") from None

    settings = settings_from_options(
        budgets=ints(budgets, "budgets"), seeds=ints(seeds, "seeds"),
        strategies=[s.strip() for s in strategies.split(",")] if strategies else None,
        hyperparams={"max_num_epochs": epochs} if epochs else None, pool_replicas=pool_replicas,
        pool_steps=pool_steps)
    spec = load_campaign(file)
    stores = get_stores()
    home = Path(stores.settings.home)
    pool, test = build_pool_and_test(spec, settings, stores, cache=home / "efficiency",
                                     processes=spec.resources.processes)
    with tempfile.TemporaryDirectory(prefix="mlipflow-efficiency-") as tmp:
        doc = run_efficiency(spec, pool, test, settings, workdir=Path(tmp), e0s=labeler_e0s(spec))
    save_efficiency(stores, doc)
    path = out or home / "reports" / f"{spec.name}-label_efficiency.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    for line in efficiency_lines(doc):
        typer.echo(line)
    typer.echo(f"wrote {path}")
