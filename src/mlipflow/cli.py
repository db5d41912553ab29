"""The ``mlipflow`` command line: set up, check, inspect the dataset, watch and run work."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlipflow.errors import ConfigError, MlipflowError
from mlipflow.settings import config_file_path, load_settings

app = typer.Typer(
    name="mlipflow",
    help="Build validated MACE potentials for battery interfaces as jobflow/FireWorks workflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dataset_app = typer.Typer(help="Labeled frames and dataset versions.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


def _add_stage_commands() -> None:
    """Sub-commands that live beside their stage's package."""
    from mlipflow.benchmark.cli import benchmark_command, efficiency_command, report_command
    from mlipflow.structures.cli import structures_app
    from mlipflow.training.cli import models_app

    app.add_typer(structures_app, name="structures")
    app.add_typer(models_app, name="models")
    app.command("report")(report_command)
    app.command("benchmark")(benchmark_command)
    app.command("efficiency")(efficiency_command)


_add_stage_commands()

console = Console()
err_console = Console(stderr=True)

LAUNCHPAD_TEMPLATES = Path(__file__).resolve().parent / "templates"


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO level on the console.")] = False,
) -> None:
    # the console shows warnings (INFO with -v), known third-party noise left out; long commands also write
    # the full log to a file under MLIPFLOW_HOME/logs (mlipflow.logs)
    from mlipflow.logs import configure

    configure(verbose=verbose, debug=debug)


# --------------------------------------------------------------------------------------------- init
@app.command()
def init(
    uri: Annotated[str | None, typer.Option(help="MongoDB URI of the production store (default: embedded).")] = None,
    home: Annotated[Path | None, typer.Option(help="Data directory (default: MLIPFLOW_HOME or per-user).")] = None,
    database: Annotated[str, typer.Option(help="Database name.")] = "mlipflow",
    force: Annotated[bool, typer.Option(help="Overwrite an existing config file.")] = False,
) -> None:
    """Write a config file and FireWorks/jobflow files for the embedded store or a MongoDB URI.

    With ``--uri`` the server is reached first (nothing is written if it cannot be), and the files that
    hold the URI are readable by their owner only (mode 0600).
    """
    from mlipflow.storage import get_stores

    settings = load_settings(**({"home": home} if home else {}))
    home = settings.home
    config_path = home / "config.yaml" if home else config_file_path()
    if config_path.exists() and not force:
        raise ConfigError(f"{config_path} exists; pass --force to overwrite it")
    if uri:  # before anything is written: a typo in the URI leaves no file behind
        get_stores(load_settings(home=home, mongodb_uri=uri, database=database))
    home.mkdir(parents=True, exist_ok=True)
    config = {"database": database}
    if uri:
        config["mongodb_uri"] = uri
    _write_file(config_path, yaml.safe_dump(config, sort_keys=False), private=bool(uri))
    written = [config_path]
    fw_dir = home / "fireworks"
    fw_dir.mkdir(exist_ok=True)
    for category in ("cpu", "gpu"):
        path = fw_dir / f"fworker_{category}.yaml"
        # the cpu worker also takes jobs that state no resource (null matches a missing _category)
        wanted = [category, None] if category == "cpu" else category
        _write_file(path, yaml.safe_dump({"name": f"{category}_worker", "category": wanted, "query": "{}"}))
        written.append(path)
    if uri:
        lp = {"host": uri, "name": database, "uri_mode": True, "logdir": str(home / "logs"), "strm_lvl": "INFO"}
        _write_file(fw_dir / "my_launchpad.yaml", yaml.safe_dump(lp), private=True)
        js = {
            "JOB_STORE": {
                "docs_store": {"type": "MongoStore", "database": database, "collection_name": "outputs", "uri": uri},
                "additional_stores": {
                    "data": {"type": "GridFSStore", "database": database, "collection_name": "outputs_data", "uri": uri}
                },
            }
        }
        _write_file(fw_dir / "jobflow.yaml", yaml.safe_dump(js, sort_keys=False), private=True)
        written += [fw_dir / "my_launchpad.yaml", fw_dir / "jobflow.yaml"]
    settings = load_settings(**({"home": home}))
    stores = get_stores(settings)
    console.print(f"[green]mlipflow is set up[/green]: {stores.describe()}")
    for path in written:
        console.print(f"  wrote {path}")
    if uri:
        console.print(
            "  plain FireWorks tools: export FW_CONFIG_FILE unset; use "
            f"`rlaunch -l {fw_dir / 'my_launchpad.yaml'} -w {fw_dir / 'fworker_cpu.yaml'} rapidfire` "
            f"with JOBFLOW_CONFIG_FILE={fw_dir / 'jobflow.yaml'}"
        )
    else:
        console.print("  workers on the embedded store: `mlipflow worker --category cpu` (and gpu)")


def _write_file(path: Path, text: str, private: bool = False) -> None:
    """Write ``text`` to ``path`` through a new file; ``private``: mode 0600 (it holds a password)."""
    import os

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------- doctor
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@app.command()
def doctor() -> None:
    """Check the store, package versions, the torch device and DFT executables."""
    from mlipflow.storage import get_stores

    settings = load_settings()
    table = Table(title="mlipflow doctor", show_header=True)
    table.add_column("check")
    table.add_column("result")
    table.add_column("", justify="center")
    ok = True
    try:
        stores = get_stores(settings)
        counts = ", ".join(f"{n}: {stores.db[n].estimated_document_count()}" for n in ("frames", "datasets", "models"))
        table.add_row("store", f"{stores.describe()} ({counts})", "[green]ok[/green]")
    except Exception as exc:  # any failure to open the store is the check's result, not a crash
        ok = False
        table.add_row("store", str(exc) if isinstance(exc, MlipflowError) else f"{type(exc).__name__}: {exc}",
                      "[red]fail[/red]")
    table.add_row("config file", f"{config_file_path()} ({'found' if config_file_path().exists() else 'none'})", "")
    for dist in (
        "mlipflow", "jobflow", "fireworks", "atomate2", "custodian", "maggma", "pymongo", "litemongo",
        "pymatgen", "ase", "mace-torch", "torch", "chgnet",
    ):
        table.add_row(dist, _version(dist), "")
    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        table.add_row("torch device", f"{device} (threads setting: {settings.torch_threads})", "[green]ok[/green]")
    except Exception as exc:  # torch import errors vary
        ok = False
        table.add_row("torch device", f"torch does not import: {exc}", "[red]fail[/red]")
    for exe in ("cp2k.psmp", "cp2k", "vasp_std", "mpirun"):
        where = shutil.which(exe)
        table.add_row(f"executable {exe}", where or "not found", "[green]ok[/green]" if where else "-")
    for name, row in _dft_checks().items():  # optional: a missing DFT code is reported, not a failure
        table.add_row(f"labeler {name}", *row)
    console.print(table)
    if not ok:
        raise typer.Exit(1)


def _dft_checks() -> dict[str, tuple[str, str]]:
    """Whether the CP2K and VASP labelers can run here: (what runs, or what to install/set; mark)."""
    from mlipflow.labeling.cp2k import check_cp2k
    from mlipflow.labeling.vasp import check_vasp

    rows = {}
    for name, check in (("cp2k", check_cp2k), ("vasp", check_vasp)):
        try:
            rows[name] = (check(), "[green]ok[/green]")
        except MlipflowError as exc:
            rows[name] = (str(exc), "-")
    return rows


# ------------------------------------------------------------------------------------------ dataset
def _dataset():
    from mlipflow.data import Dataset
    from mlipflow.storage import get_stores

    return Dataset(get_stores())


@dataset_app.command("import")
def dataset_import(
    path: Annotated[Path, typer.Argument(help="extxyz file, or ASE database (.db/.json).")],
    labeler: Annotated[str, typer.Option(help="Name of the method that made the labels.")],
    kind: Annotated[str, typer.Option(help="dft, surrogate or imported (unknown method).")] = "imported",
    labeler_version: Annotated[str | None, typer.Option(help="Version of the labeling code/model.")] = None,
    min_distance: Annotated[list[str] | None, typer.Option(
        help="Floor of one element pair, e.g. Li-O=1.4 (Å); repeat for more pairs.")] = None,
    covalent_fraction: Annotated[float, typer.Option(
        help="Floor of the other pairs: this fraction of the sum of the covalent radii (0: no check).")] = 0.5,
) -> None:
    """Import labeled frames (all or nothing; frames already stored are not stored twice).

    A frame with two atoms closer than their pair's floor (default: half the sum of their covalent radii,
    e.g. 0.66 Å for O-O, 1.28 Å for Li-Li) is refused, naming the file, the frame and the atoms.
    """
    from mlipflow.data import LabelerInfo
    from mlipflow.data.io import import_frames, read_frames
    from mlipflow.sampling.monitors import MinDistanceMonitor

    if kind not in ("dft", "surrogate", "imported"):
        raise ConfigError(f"--kind must be dft, surrogate or imported, not {kind!r}")
    floors = {}
    for item in min_distance or []:
        pair, _, value = item.partition("=")
        elements = pair.split("-")
        try:
            floors[pair] = float(value)
            from ase.data import chemical_symbols

            if len(elements) != 2 or not set(elements) <= set(chemical_symbols[1:]):
                raise ValueError
        except ValueError:
            raise ConfigError(f"--min-distance {item!r}: expected an element pair and a distance in Å, "
                              "e.g. Li-O=1.4") from None
    if covalent_fraction < 0:
        raise ConfigError(f"--covalent-fraction must be 0 or more, not {covalent_fraction}")
    monitor = MinDistanceMonitor(floors=floors, covalent_fraction=covalent_fraction)
    info = LabelerInfo(name=labeler, kind=kind, version=labeler_version)
    frames = read_frames(path, info, min_distance=monitor)  # every frame checked before the store is opened
    result = import_frames(_dataset(), frames)
    console.print(
        f"{path}: {len(result.inserted)} new frames, {len(result.existing)} already stored "
        f"(labeler {info.describe()})"
    )


@dataset_app.command("export")
def dataset_export(
    version: Annotated[str, typer.Argument(help="Dataset version id (or a dataset name: its newest version).")],
    path: Annotated[Path, typer.Argument(help="Output extxyz file.")],
    split: Annotated[str | None, typer.Option(help="train, valid or test (default: all).")] = None,
) -> None:
    """Export a dataset version as extxyz with MACE's REF_* keys."""
    from mlipflow.data import export_extxyz

    if split not in (None, "train", "valid", "test"):
        raise ConfigError(f"--split must be train, valid or test, not {split!r}")
    n = export_extxyz(_dataset(), version, path, split)  # type: ignore[arg-type]
    console.print(f"wrote {n} frames to {path}")


@dataset_app.command("version")
def dataset_version(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    parent: Annotated[str | None, typer.Option(help="Parent version id.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split assignment.")] = 0,
    note: Annotated[str, typer.Option(help="Note kept with the version.")] = "",
) -> None:
    """Freeze every labeled frame into a new immutable dataset version."""
    version = _dataset().create_version(name, parent=parent, seed=seed, note=note)
    console.print(f"dataset version {version.id}: {version.counts}")


@dataset_app.command("list")
def dataset_list() -> None:
    """List dataset versions and frame counts by status and labeler."""
    dataset = _dataset()
    table = Table(title=f"dataset versions ({dataset.stores.describe()})")
    for col in ("version", "parent", "train", "valid", "test", "labelers", "created"):
        table.add_column(col)
    for v in dataset.list_versions():
        table.add_row(
            v.id, v.parent or "-", *(str(v.counts.get(s, 0)) for s in ("train", "valid", "test")),
            ", ".join(f"{k}: {n}" for k, n in v.labelers.items()), f"{v.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)
    status = Table(title="frames")
    for col in ("labeler", "status", "frames"):
        status.add_column(col)
    pipeline = [{"$group": {"_id": {"labeler": "$labeler", "status": "$status"}, "n": {"$sum": 1}}}]
    from mlipflow.data import LabelerInfo

    for row in dataset.frames.aggregate(pipeline):
        status.add_row(LabelerInfo(**row["_id"]["labeler"]).describe(), row["_id"]["status"], str(row["n"]))
    console.print(status)


@dataset_app.command("show")
def dataset_show(version: Annotated[str, typer.Argument(help="Dataset version id or name.")]) -> None:
    """Show one dataset version: splits, config types, labelers, parent, note."""
    v = _dataset().get_version(version)
    console.print_json(v.model_dump_json(exclude={"manifest_file"}))


@dataset_app.command("filtered")
def dataset_filtered(
    name: Annotated[str | None, typer.Argument(help="Campaign name (default: every frame in the store).")] = None,
    limit: Annotated[int, typer.Option(help="Show at most N frames (0: all).")] = 0,
) -> None:
    """List labels a sanity filter rejected and labels that failed, with their reasons (newest first)."""
    from mlipflow.labeling.ledger import rejected_labels
    from mlipflow.storage import get_stores

    rows = rejected_labels(get_stores().frames, campaign=name, limit=limit)
    where = f"campaign {name}" if name else "the store"
    if not rows:
        console.print(f"no filtered or failed labels in {where}", highlight=False)
        return
    counts = {s: sum(r["status"] == s for r in rows) for s in ("filtered", "failed")}
    console.print(f"{counts['filtered']} filtered and {counts['failed']} failed labels in {where}:",
                  highlight=False)
    for r in rows:  # one block per frame: the reason wraps under it, never inside a table cell
        console.print(f"{r['status']} {r['frame']}: {r['formula']} ({r['n_atoms']} atoms), family {r['family']}, "
                      f"iteration {r['iteration']}, {r['attempts']} attempt(s), {r['labeler']}", highlight=False)
        console.print(f"  {r['reason'] or 'no reason recorded'}", highlight=False, markup=False)


# ---------------------------------------------------------------------------------------- execution
@app.command()
def worker(
    category: Annotated[str | None, typer.Option(help="cpu or gpu (default: any category).")] = None,
    nlaunches: Annotated[int, typer.Option(help="Stop after N launches (0: until nothing is ready).")] = 0,
    max_loops: Annotated[int, typer.Option(help="Polling loops (-1: stop when nothing is ready).")] = -1,
    sleep: Annotated[int, typer.Option(help="Seconds between polls.")] = 5,
) -> None:
    """Run fireworks from the configured LaunchPad (FireWorks' rapidfire) on this machine.

    On the embedded store, workers share one file lock: the store's own work is serialised (measured in
    bench/results/rapidfire.json: 20 trivial fireworks/s with one worker, 15/s in total with three), so
    several workers pay off only for jobs that take seconds (labeling, MD, training).  Many workers, or
    workers on several machines, need MongoDB (``MLIPFLOW_MONGODB_URI``).
    """
    from mlipflow.execution import run_worker
    from mlipflow.settings import load_settings

    if not load_settings().mongodb_uri:
        console.print("[yellow]note:[/yellow] embedded store: workers share one file lock (at most about "
                      "20 trivial fireworks/s in total, however many workers); use MongoDB (MLIPFLOW_MONGODB_URI) for "
                      "many workers or several machines")
    from mlipflow.campaign.progress import watch
    from mlipflow.storage import get_stores

    stores = get_stores()
    with watch(stores, f"worker-{category or 'any'}"):
        run_worker(category=category, nlaunches=nlaunches, max_loops=max_loops, sleep_time=sleep)
    from mlipflow.execution import waiting_elsewhere

    waiting = waiting_elsewhere(stores.launchpad, category)
    if waiting:
        listed = ", ".join(f"{n} in {c}" for c, n in sorted(waiting.items()))
        starts = " or ".join(f"`mlipflow worker --category {c}`" for c in sorted(waiting) if c != "any")
        console.print(f"worker {category}: nothing left to run here; waiting for other workers: {listed} "
                      f"firework(s){f' (start {starts})' if starts else ''}")


def _campaign_flow(path: Path):
    from mlipflow.campaign.loop import campaign_from_spec
    from mlipflow.campaign.spec import load_campaign

    spec = load_campaign(path)
    return spec, campaign_from_spec(spec).make()


@app.command()
def validate(path: Annotated[Path, typer.Argument(help="Campaign file (YAML).")]) -> None:
    """Check a campaign file: keys, types, structure sections (errors name the key and the line)."""
    spec, flow = _campaign_flow(path)
    console.print(f"{path}: campaign {spec.name!r} is valid ({len(flow.jobs)} steps before the loop adds more)")


@app.command("schema")
def schema() -> None:
    """Print the JSON schema of campaign files."""
    from mlipflow.campaign.spec import CampaignSpec

    console.print_json(data=CampaignSpec.model_json_schema())


@app.command()
def run(
    path: Annotated[Path | None, typer.Argument(help="Campaign file (YAML); default: the li2o example.")] = None,
    example: Annotated[str | None, typer.Option(help="Run a shipped example (`mlipflow examples`).")] = None,
    report: Annotated[bool, typer.Option(help="Write the campaign's HTML report at the end.")] = True,
) -> None:
    """Run a campaign here until it converges or stops for a stated reason (default: the li2o example).

    The campaign goes on the configured LaunchPad (the dashboard shows it as a submitted one) and this
    process runs its jobs; the same spec again continues it.
    """
    from mlipflow.campaign.progress import watch
    from mlipflow.campaign.runner import run_campaign
    from mlipflow.campaign.spec import load_campaign
    from mlipflow.examples import example_path
    from mlipflow.storage import get_stores

    if path is not None and example is not None:
        raise ConfigError("give a campaign file or --example NAME, not both")
    if path is None:
        path = example_path(example or "li2o", kind="campaign")
    spec = load_campaign(path)
    stores = get_stores()
    console.print(f"running campaign {spec.name} on {stores.describe()} (labeler: {spec.labeler.kind} "
                  f"{spec.labeler.calculator if spec.labeler.kind == 'surrogate' else ''})", highlight=False)
    with watch(stores, f"campaign-{spec.name}", campaign=spec.name):
        doc = run_campaign(stores, spec)
    _print_status(stores, spec.name)
    if doc.get("state") == "failed":
        from mlipflow.campaign.runner import failure_advice

        raise MlipflowError(f"campaign {spec.name} failed in {failure_advice(doc)}".replace(" FILE`", f" {path}`"))
    from mlipflow.benchmark.cli import benchmark_lines

    for line in benchmark_lines(doc.get("benchmark") or {}):
        console.print(line, highlight=False)
    if doc.get("state") in (None, "running"):
        raise MlipflowError(f"campaign {spec.name} did not finish (see the log above); `mlipflow resume "
                            f"{spec.name}` continues it and reuses every finished label and training")
    if report:
        from mlipflow.benchmark.report import report as write_report

        console.print(f"report: {write_report(spec.name)}", highlight=False)


@app.command("examples")
def examples(
    names: Annotated[list[str] | None, typer.Argument(help="Examples to copy (default: all).")] = None,
    copy: Annotated[Path | None, typer.Option("--copy", help="Copy the examples into this directory.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite files in the --copy directory.")] = False,
) -> None:
    """List the example campaign and structure files shipped with mlipflow, or copy them to edit."""
    from mlipflow.examples import copy_examples, list_examples

    if copy is not None:
        for target in copy_examples(copy, names or None, overwrite=force):
            console.print(f"wrote {target}", highlight=False)
        return
    for ex in list_examples():
        if names and ex.name not in names:
            continue
        use = f"mlipflow run --example {ex.name}" if ex.kind == "campaign" else \
            f"mlipflow examples {ex.name} --copy . && mlipflow structures preview {ex.path.name}"
        title = f"{ex.name} ({ex.kind}" + (f" {ex.campaign})" if ex.campaign else ")")
        console.print(f"[bold]{title}[/bold]: {ex.description}", highlight=False)
        console.print(f"  {use}", highlight=False, markup=False)
    console.print("copy them to edit: mlipflow examples --copy DIR", highlight=False, markup=False)


@app.command("submit")
def submit_campaign(path: Annotated[Path, typer.Argument(help="Campaign file (YAML).")]) -> None:
    """Add a campaign to the LaunchPad: labeling on cpu workers, training and MD on gpu workers.

    Refused while the campaign is submitted already or run by a live process (``mlipflow run``).
    """
    from mlipflow.campaign.runner import claim_campaign, refuse_if_submitted, release_campaign
    from mlipflow.execution import submit
    from mlipflow.storage import get_stores

    spec, flow = _campaign_flow(path)
    stores = get_stores()
    runner = claim_campaign(stores, spec.name)  # held while submitting: no run can start in between
    try:
        refuse_if_submitted(stores, spec.name)
        ids = submit(flow, stores)
    finally:
        release_campaign(stores, spec.name, runner, forget_unstarted=True)  # its first job records it
    console.print(f"campaign {spec.name}: {len(ids)} jobs submitted; run `mlipflow worker --category cpu|gpu`")


@app.command()
def resume(name: Annotated[str, typer.Argument(help="Campaign name.")]) -> None:
    """Run a campaign again from its stored spec: finished labels, trainings and MD are reused, not recomputed."""
    from mlipflow.campaign.progress import watch
    from mlipflow.campaign.runner import resume_campaign
    from mlipflow.storage import get_stores

    stores = get_stores()
    with watch(stores, f"campaign-{name}", campaign=name):
        resume_campaign(stores, name)
    _print_status(stores, name)


def _print_status(stores, name: str | None, as_json: bool = False) -> None:
    from mlipflow.campaign.status import campaign_status
    from mlipflow.campaign.status_view import print_status, status_document

    names = [name] if name else [d["_id"] for d in stores.campaigns.find({}, {"_id": 1})]
    if not names:
        raise ConfigError("no campaigns yet")
    documents = []
    for campaign in names:
        st = status_document(stores, campaign) if as_json else campaign_status(stores, campaign)
        if st["state"] is None:
            raise ConfigError(st["next"])
        if as_json:
            documents.append(st)
        else:
            print_status(console, st)
    if as_json:
        import json

        sys.stdout.write(json.dumps(documents[0] if name else documents, indent=1) + "\n")


@app.command()
def status(
    name: Annotated[str | None, typer.Argument(help="Campaign name (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON (a list without NAME).")] = False,
) -> None:
    """Per campaign: iteration, committee, dataset, accurate/candidate/failed ratios, decision, labels."""
    from mlipflow.storage import get_stores

    _print_status(get_stores(), name, as_json=as_json)


@app.command()
def nightly(
    max_reruns: Annotated[int, typer.Option(help="Rerun a failed job while it has failed fewer times.")] = 2,
    lost_after: Annotated[int, typer.Option(help="A running job silent this long (s) is a lost run.")] = 4 * 3600,
    launches: Annotated[int, typer.Option(help="Then run up to N jobs with a local worker (0: none).")] = 0,
) -> None:
    """One idempotent nightly pass (lost runs, reruns, local work, a summary); safe from cron."""
    from mlipflow.campaign.nightly import NightlyAlreadyRunningError, run_nightly
    from mlipflow.campaign.progress import watch
    from mlipflow.storage import get_stores

    stores = get_stores()
    try:
        with watch(stores, "nightly"):  # the steps of resumed campaigns and local work, one line each
            summary = run_nightly(stores, max_reruns=max_reruns, expiration_secs=lost_after,
                                  worker_launches=launches)
    except NightlyAlreadyRunningError as exc:
        console.print(str(exc))
        return
    console.print(summary["text"])


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port on localhost.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind (localhost by default).")] = "127.0.0.1",
) -> None:
    """Serve FireWorks' web dashboard for the configured store (embedded or MongoDB); works offline."""
    from mlipflow.dashboard import dashboard_app
    from mlipflow.storage import get_stores

    stores = get_stores()
    fw_app = dashboard_app(stores.launchpad)
    console.print(f"FireWorks dashboard for {stores.describe()} on http://{host}:{port}/")
    fw_app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)


def main() -> None:
    """Console entry point: user errors print as one message, tracebacks only with --debug."""
    debug = "--debug" in sys.argv
    try:
        code = app(standalone_mode=False)
    except MlipflowError as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # not an input error we know: still one line, and the way to the traceback
        if debug:
            raise
        err_console.print(f"[red]error:[/red] internal error, please report it with the output of --debug: "
                          f"{type(exc).__name__}: {escape(' '.join(str(exc).split())[:500])}", highlight=False,
                          soft_wrap=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)  # standalone_mode=False returns a command's exit code


if __name__ == "__main__":
    main()
