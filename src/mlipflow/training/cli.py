"""``mlipflow models``: list, show and export registered models (a typer sub-app, wired by the main CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

models_app = typer.Typer(help="The model registry: trained MACE models and committees.", no_args_is_help=True)
console = Console()


def _registry():
    from mlipflow.storage import get_stores
    from mlipflow.training.registry import ModelRegistry

    return ModelRegistry(get_stores())


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@models_app.command("list")
def list_models(
    kind: Annotated[str | None, typer.Option(help="Only this kind: mace, finetune or committee.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only models trained on this dataset version.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List registered models with their validation errors (meV/atom, meV/Å)."""
    records = _registry().list(kind=kind, dataset_version=dataset)  # type: ignore[arg-type]
    rows = [r.summary() for r in records]
    if as_json:
        typer.echo(json.dumps(rows, indent=1, default=str))
        return
    table = Table(title=f"{len(rows)} model(s)")
    for col in ("id", "kind", "dataset", "valid E meV/atom", "valid F meV/Å", "epochs", "wall s", "device"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"], r["kind"], str(r["dataset"]), _fmt(r["valid_rmse_e_meV_atom"], 2),
                      _fmt(r["valid_rmse_f_meV_A"]), str(r["epochs"]), _fmt(r["wall_time_s"], 0), str(r["device"]))
    console.print(table)


@models_app.command("show")
def show_model(
    model_id: Annotated[str, typer.Argument(help="Model id (or a unique prefix).")],
    curves: Annotated[bool, typer.Option(help="Include the per-epoch curves.")] = False,
) -> None:
    """Show everything the registry knows about one model (JSON)."""
    record = _registry().get(model_id)
    doc = record.model_dump()
    if not curves:
        doc["curves"] = {"epochs": len(record.curves.get("points", [])), "restarts": record.curves.get("restarts")}
    typer.echo(json.dumps(doc, indent=1, default=str))


@models_app.command("export")
def export_model(
    model_id: Annotated[str, typer.Argument(help="Model id (or a unique prefix).")],
    path: Annotated[Path, typer.Argument(help="Directory to write the files into.")],
    lammps: Annotated[bool, typer.Option(help="Also write a LAMMPS (pair_style mace) file with mace-torch.")] = False,
    head: Annotated[str | None, typer.Option(help="Head for the LAMMPS file (multi-head models).")] = None,
) -> None:
    """Write the model's .model file (and compiled/LAMMPS files) into a directory; a committee exports all members."""
    for written in _registry().export(model_id, path, lammps=lammps, head=head):
        typer.echo(str(written))
