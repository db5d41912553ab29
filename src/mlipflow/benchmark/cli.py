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
