"""``mlipflow structures ...`` sub-commands (wired in with ``app.add_typer(structures_app, name="structures")``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

structures_app = typer.Typer(help="Generate and preview starting structures.", no_args_is_help=True)


@structures_app.callback()
def _structures() -> None:
    """Generate and preview starting structures."""


@structures_app.command("preview")
def preview_command(
    file: Annotated[Path, typer.Argument(help="YAML file with a structure section.")],
    out: Annotated[Path, typer.Option(help="Directory for the CIF/extxyz files.")] = Path("structures_preview"),
    skip_md: Annotated[bool, typer.Option("--skip-md", help="Write the starts of melt-quench entries, no MD.")] = False,
) -> None:
    """Build every cell of a structure section (or of a campaign file's ``structures``), print the table and write
    CIF/extxyz files."""
    from mlipflow.structures.preview import preview

    rows = preview(file, out, skip_md=skip_md)
    table = Table(title=f"{len(rows)} cells from {file}")
    for col in ("entry", "family", "formula", "atoms", "Σ", "strain", "note"):
        table.add_column(col, justify="right" if col in ("atoms", "Σ", "strain") else "left")
    for r in rows:
        table.add_row(
            r["entry"],
            r["family"],
            r["formula"],
            str(r["atoms"]),
            "" if r["sigma"] is None else str(r["sigma"]),
            "" if r["strain"] is None else f"{r['strain']:.4f}",
            r["note"],
        )
    console = Console()
    console.print(table)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["family"]] = counts.get(r["family"], 0) + 1
    console.print("counts: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; files in {out}")
