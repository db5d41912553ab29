"""A live view of running campaigns (``mlipflow run``, ``resume``, ``worker``), read from what the stages record.

Nothing here is called by a stage.  The view learns which job runs from jobflow's own log records
(``Starting job - NAME (UUID)``/``Finished job - ...``), what the job is from jobflow's ``CURRENT_JOB`` (its
``campaign``/``iteration``/``stage`` metadata and arguments), and how far it has come from the records the
stages keep anyway:

* labeling: the label ledger (frames of the campaign and iteration finished since the job started, out of the
  job's batch);
* committee MD: the trajectory headers written since the job started (walkers done, MD steps recorded);
* training: mace-torch's own results file in the run directory under ``MLIPFLOW_HOME/training`` (epochs
  done and the latest validation force error);
* a finished job: its document in the JobStore (metadata and output: counts, errors, the decision).

On a terminal it is a rich live panel (iteration, stage, what runs now and its counts, elapsed time, the
decisions so far) above which every finished step prints one line.  Elsewhere (pipes, CI, cron) only those
lines are printed: one per finished step, naming the campaign, iteration and stage.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mlipflow.storage import Stores

logger = logging.getLogger(__name__)

_JOB_RECORD = re.compile(r"^(Starting|Finished) job - (.*) \(([0-9a-f-]{36})(?:, (\d+))?\)$")
#: jobs that do no work of their own: bookkeeping jobflow adds when a job replaces itself
_BOOKKEEPING = ("store_inputs",)


@dataclass
class Step:
    """One job of a campaign as the view knows it.

    Attributes
    ----------
    uuid, index, name
        jobflow's identity and name of the job.
    campaign, iteration, stage
        From the job's metadata (``None`` until known).
    started, finished
        Wall-clock times (s since the epoch).
    """

    uuid: str
    index: int
    name: str
    started: float
    campaign: str | None = None
    iteration: int | None = None
    stage: str | None = None
    plans: bool = False
    finished: float | None = None
    totals: dict[str, int] = field(default_factory=dict)
    detail: str = ""

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        self.campaign = metadata.get("campaign", self.campaign)
        if metadata.get("iteration") is not None:
            self.iteration = int(metadata["iteration"])
        self.stage = metadata.get("stage", self.stage)
        self.plans = bool(metadata.get("plans", self.plans))

    @property
    def where(self) -> str:
        """``toy · iteration 1 · explore`` (the parts that are known)."""
        parts = [p for p in (self.campaign, None if self.iteration is None else f"iteration {self.iteration}",
                             self.stage) if p]
        return " · ".join(parts)

    @property
    def short_name(self) -> str:
        """The job name without what :attr:`where` already says (``label batch 0`` -> ``batch 0``)."""
        return short_job_name(self.name, self.iteration, self.stage)


def short_job_name(name: str, iteration: int | None, stage: str | None) -> str:
    """``name`` without a trailing ``iteration N`` and a leading stage word (empty if nothing is left)."""
    text = name
    if iteration is not None:
        text = re.sub(rf"\s*iteration {iteration}\b", "", text).strip()
    if stage and (text == stage or text.startswith(stage + " ")):
        text = text[len(stage):].strip(" :")
    return text


class JobEvents(logging.Handler):
    """Turns jobflow's start/finish records into events on a queue (any thread, any worker in the process)."""

    def __init__(self, events: queue.Queue) -> None:
        super().__init__(level=logging.DEBUG)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != "jobflow.core.job":
            return
        match = _JOB_RECORD.match(record.getMessage())
        if match:
            kind, name, uuid, index = match.groups()
            self.events.put((kind.lower(), name, uuid, int(index or 1), record.created))


def _fmt_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _counts_text(counts: dict[str, Any], keys: Sequence[str] | None = None) -> str:
    keys = keys or list(counts)
    return ", ".join(f"{counts[k]} {k}" for k in keys if counts.get(k))


def summarize_output(stage: str | None, output: Any) -> str:
    """A few words on what a finished job produced, from its output document (empty if nothing to say).

    Reads the keys the stages return (``counts``, ``version``, ``model_id`` with ``errors``, ``walkers``,
    ``picks`` with ``trust_report``, ``decision``, ``structures``); unknown outputs give an empty string.
    """
    if not isinstance(output, dict):
        return ""
    if isinstance(output.get("decision"), dict):  # the iteration record of a decision job
        decision = output["decision"]
        return f"decision {decision.get('decision')}: {decision.get('reason', '')}".strip()
    if "model_id" in output:
        errors = (output.get("errors") or {})
        split = "test" if errors.get("test") else "valid"
        err = errors.get(split) or {}
        text = f"model {output['model_id']}"
        if err.get("rmse_f") is not None:
            text += f", {split} RMSE F {1e3 * float(err['rmse_f']):.0f} meV/Å"
        if err.get("rmse_e_per_atom") is not None:
            text += f", E {1e3 * float(err['rmse_e_per_atom']):.1f} meV/atom"
        return text
    if "version" in output and isinstance(output.get("counts"), dict):
        return f"dataset version {output['version']} ({_counts_text(output['counts'])})"
    if isinstance(output.get("walkers"), list):
        walkers = output["walkers"]
        steps = sum(int(w.get("n_steps", 0)) for w in walkers if isinstance(w, dict))
        reasons: dict[str, int] = {}
        for w in walkers:
            if isinstance(w, dict):
                reasons[str(w.get("stop_reason"))] = reasons.get(str(w.get("stop_reason")), 0) + 1
        spread = max((float(w.get("max_force_spread", 0.0)) for w in walkers if isinstance(w, dict)), default=0.0)
        text = f"{len(walkers)} walkers, {steps} MD steps, stop: {_counts_text(reasons)}"
        # MD with the labeler itself (reference MD) has no committee, hence no spread to show
        return text + (f", max force spread {spread:.3f} eV/Å" if spread > 0 else "")
    if isinstance(output.get("picks"), list):
        trust = (output.get("trust_report") or {}).get("all") or {}
        ratios = ", ".join(f"{k} {float(trust[k + '_ratio']):.2f}" for k in ("accurate", "candidate", "failed")
                           if trust.get(k + "_ratio") is not None)
        return f"picked {len(output['picks'])}" + (f" ({ratios})" if ratios else "")
    if isinstance(output.get("counts"), dict) and "frame_ids" in output:  # labels
        return _counts_text(output["counts"]) or "nothing to label"
    if isinstance(output.get("structures"), list):
        return f"{len(output['structures'])} structures"
    return ""


def step_line(step: Step, summary: str, since: float) -> str:
    """The one line printed for a finished step."""
    name = step.short_name
    head = f"[{_fmt_elapsed((step.finished or time.time()) - since)}] {step.where or step.name}"
    if name and step.where:
        head += f": {name}"
    took = (step.finished or time.time()) - step.started
    return f"{head} · {summary + ' · ' if summary else ''}{took:.1f} s"


# ------------------------------------------------------------------------------ progress of a running job
def _job_sizes(job: Any) -> dict[str, int]:
    """Sizes of a running job's inputs: ``structures`` (or frames), ``temperatures``, ``n_steps``, ``record_every``.

    Read from the job's resolved arguments without knowing the function: the first list of structures (or of
    frame ids), the first list of numbers, the first object with an ``n_steps``.
    """
    from pymatgen.core import Structure

    sizes: dict[str, int] = {}
    values = [*getattr(job, "function_args", ()), *(getattr(job, "function_kwargs", {}) or {}).values()]
    kwargs = getattr(job, "function_kwargs", {}) or {}
    if isinstance(kwargs.get("frame_ids"), list) and kwargs["frame_ids"]:
        sizes["structures"] = len(kwargs["frame_ids"])
    for value in values:
        if isinstance(value, list) and value:
            if "structures" not in sizes and all(isinstance(v, Structure) for v in value):
                sizes["structures"] = len(value)
            elif "temperatures" not in sizes and all(isinstance(v, int | float) for v in value):
                sizes["temperatures"] = len(value)
        for attr in ("n_steps", "record_every"):
            if attr not in sizes and isinstance(getattr(value, attr, None), int):
                sizes[attr] = int(getattr(value, attr))
    return sizes


def label_progress(stores: Stores, step: Step) -> str:
    """``labels 5/8`` of the running label batch, from the ledger (frames finished since the job started)."""
    total = step.totals.get("structures")
    query: dict[str, Any] = {"status": {"$in": ["labeled", "filtered", "failed"]},
                             "updated_at": {"$gte": datetime.fromtimestamp(step.started, UTC)}}
    if step.campaign:
        query["provenance.campaign"] = step.campaign
    if step.iteration is not None:
        query["provenance.iteration"] = step.iteration
    done = stores.frames.count_documents(query)
    return f"labels {min(done, total) if total else done}/{total if total else '?'} of this batch"


def md_progress(stores: Stores, step: Step) -> str:
    """``walker 2/4, MD steps ~120/400``, from the trajectory headers written since the job started."""
    from mlipflow.sampling.trajectory import TRAJECTORIES

    headers = list(stores.collection(TRAJECTORIES).find(
        {"created_at": {"$gte": datetime.fromtimestamp(step.started, UTC)}},
        {"n_frames": 1, "complete": 1, "metadata.stop_step": 1}))
    n_total = step.totals.get("structures", 0) * max(1, step.totals.get("temperatures", 1))
    per_walker = step.totals.get("n_steps", 0)
    every = max(1, step.totals.get("record_every", 1))
    steps = sum(max(0, int(h.get("n_frames", 0)) - 1) * every for h in headers)
    done = sum(1 for h in headers if h.get("complete"))
    text = f"walkers {done}/{n_total or '?'} done"
    if per_walker and n_total:
        text += f", MD steps ~{min(steps, per_walker * n_total)}/{per_walker * n_total} recorded"
    return text


def training_runs(home: Path, since: float) -> list[Path]:
    """mace-torch run directories under ``home/training`` written to since ``since`` (s since the epoch)."""
    root = Path(home) / "training"
    if not root.is_dir():
        return []
    runs = []
    for run in root.iterdir():
        args = run / "mace_args.json"
        if args.is_file() and args.stat().st_mtime >= since - 1:
            runs.append(run)
    return sorted(runs, key=lambda p: (p / "mace_args.json").stat().st_mtime)


def training_progress(home: Path, step: Step) -> str:
    """``epoch 3/10, valid RMSE F 123 meV/Å``, from mace-torch's results file of the run the job started."""
    runs = training_runs(home, step.started)
    if not runs:
        return "preparing"
    run = runs[-1]
    try:
        args = json.loads((run / "mace_args.json").read_text())
    except (OSError, json.JSONDecodeError):
        return "starting"
    total = int(args.get("max_num_epochs") or 0)
    last: dict[str, Any] | None = None
    for path in sorted((run / "results").glob("*_train.txt")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("mode") == "eval" and rec.get("epoch") is not None:
                last = rec
    if last is None:
        return f"epoch 0/{total}"
    text = f"epoch {int(last['epoch']) + 1}/{total}"
    if last.get("rmse_f") is not None:
        text += f", valid RMSE F {1e3 * float(last['rmse_f']):.0f} meV/Å"
    if last.get("rmse_e_per_atom") is not None:
        text += f", E {1e3 * float(last['rmse_e_per_atom']):.1f} meV/atom"
    return text


# ------------------------------------------------------------------------------------------- the view
class ProgressView:
    """Shows running campaigns; a context manager around the code that runs the jobs (in this process).

    Parameters
    ----------
    stores
        The stores the jobs use.
    console
        Where to print (a rich Console; its ``is_terminal`` chooses live panel or plain lines).
    campaign
        Show only this campaign's jobs (``None``: every job, as a worker sees them).
    live
        Force the live panel on or off (default: when ``console`` is a terminal).
    refresh
        Seconds between looks at the running job's progress (s).
    """

    def __init__(self, stores: Stores, console: Console, campaign: str | None = None, live: bool | None = None,
                 refresh: float = 1.0) -> None:
        self.stores = stores
        self.console = console
        self.campaign = campaign
        self.live_mode = console.is_terminal if live is None else live
        self.refresh = refresh
        self.started = time.time()
        self.events: queue.Queue = queue.Queue()
        self.handler = JobEvents(self.events)
        self.steps: dict[tuple[str, int], Step] = {}
        self.current: Step | None = None
        self.decisions: list[tuple[int | None, str]] = []
        self.finished_steps = 0
        self.last_line = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None
        self._label_counts: dict[str, int] = {}
        self._next_counts = 0.0
        self._level = logging.NOTSET

    # -- lifecycle
    def __enter__(self) -> ProgressView:
        job_logger = logging.getLogger("jobflow.core.job")
        self._level = job_logger.level
        if job_logger.getEffectiveLevel() > logging.INFO:  # jobflow's start/finish records are INFO
            job_logger.setLevel(logging.INFO)
        job_logger.addHandler(self.handler)
        if self.live_mode:
            from mlipflow.logs import console_handler

            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
            handler = console_handler()
            if handler is not None:  # log records print above the panel, not through it
                handler.console = self.console
        self._thread = threading.Thread(target=self._run, name="mlipflow-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._drain()
        job_logger = logging.getLogger("jobflow.core.job")
        job_logger.removeHandler(self.handler)
        job_logger.setLevel(self._level)
        if self._live is not None:
            from mlipflow.logs import console_handler

            self._live.stop()
            handler = console_handler()
            if handler is not None:
                handler.console = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._drain(timeout=self.refresh)
                if self._live is not None:
                    self._poll()
                    self._live.update(self._render())
            except Exception:  # the view must never stop the campaign
                logger.debug("progress view: update failed", exc_info=True)

    # -- events
    def _drain(self, timeout: float = 0.0) -> None:
        try:
            event = self.events.get(timeout=timeout) if timeout else self.events.get_nowait()
        except queue.Empty:
            return
        while True:
            try:
                self._handle(*event)
            except Exception:
                logger.debug("progress view: event %s failed", event, exc_info=True)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _handle(self, kind: str, name: str, uuid: str, index: int, when: float) -> None:
        if kind == "starting":
            step = Step(uuid=uuid, index=index, name=name, started=when)
            self.steps[(uuid, index)] = step
            self.current = step
            return
        step = self.steps.pop((uuid, index), None) or Step(uuid=uuid, index=index, name=name, started=when)
        step.finished = when
        if self.current is step:
            self.current = None
        doc = self.stores.jobstore.query_one({"uuid": uuid, "index": index},
                                             properties=["metadata", "output", "name"], load=False) or {}
        step.set_metadata(doc.get("metadata") or {})
        if self.campaign is not None and step.campaign != self.campaign:
            return
        if step.plans or step.name in _BOOKKEEPING:
            return  # planning jobs and jobflow's bookkeeping: the work is in the jobs they add
        summary = summarize_output(step.stage, doc.get("output"))
        if step.stage == "decide" and summary:
            self.decisions.append((step.iteration, summary))
        self.finished_steps += 1
        self.last_line = step_line(step, summary, self.started)
        self.console.print(Text(self.last_line, style="bold" if step.stage == "decide" else ""), soft_wrap=True)

    # -- polling (live panel only)
    def _poll(self) -> None:
        step = self.current
        if step is not None and step.stage is None:
            from jobflow import CURRENT_JOB

            job = CURRENT_JOB.job
            if job is not None and job.uuid == step.uuid:
                step.set_metadata(job.metadata or {})
                step.totals = _job_sizes(job)
        if step is not None and step.stage is not None:
            if step.stage == "label" and not step.plans:
                step.detail = label_progress(self.stores, step)
            elif step.stage == "explore":
                step.detail = md_progress(self.stores, step)
            elif step.stage == "train":
                step.detail = training_progress(self.stores.settings.home, step)
        campaign = self.campaign or (step.campaign if step else None)
        if campaign and time.time() >= self._next_counts:
            self._next_counts = time.time() + 5.0
            rows = self.stores.frames.aggregate([{"$match": {"provenance.campaign": campaign}},
                                                 {"$group": {"_id": "$status", "n": {"$sum": 1}}}])
            self._label_counts = {str(r["_id"]): int(r["n"]) for r in rows}

    def _render(self) -> Panel:
        now = time.time()
        step = self.current
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        if step is not None:
            what = step.short_name or step.name
            detail = f" · {step.detail}" if step.detail else ""
            grid.add_row("now", f"{what} ({_fmt_elapsed(now - step.started)}){detail}")
        else:
            grid.add_row("now", "waiting for the next job")
        if self._label_counts:
            grid.add_row("labels", _counts_text(self._label_counts, ["labeled", "running", "pending", "failed",
                                                                     "filtered"]))
        grid.add_row("steps", f"{self.finished_steps} finished")
        for iteration, text in self.decisions[-3:]:
            grid.add_row(f"iteration {iteration}", text)
        where = step.where if step is not None and step.where else (self.campaign or "worker")
        title = f"{where} · {_fmt_elapsed(now - self.started)} elapsed"
        return Panel(Group(grid), title=title, title_align="left", border_style="blue")


@contextlib.contextmanager
def watch(stores: Stores, log_name: str, campaign: str | None = None, live: bool | None = None
          ) -> Iterator[ProgressView]:
    """Show the progress of the jobs run inside the block; keep the full log in ``MLIPFLOW_HOME/logs``.

    Prints the log file's path first.  Inside the block, what libraries print goes to the log file
    (:func:`mlipflow.logs.captured_output`); the view prints to the real standard output.

    Parameters
    ----------
    stores
        The stores the jobs use.
    log_name
        Name of the log file (``campaign-<name>``, ``worker-cpu``).
    campaign
        Show only this campaign's jobs (``None``: all, as for a worker).
    live
        Force the live panel on or off (default: on when standard output is a terminal).
    """
    import sys

    from mlipflow.logs import captured_output, log_to_file

    path = log_to_file(stores.settings.home, log_name)
    console = Console(file=sys.stdout, highlight=False)
    console.print(f"full log: {path}", soft_wrap=True)
    with captured_output(), ProgressView(stores, console, campaign=campaign, live=live) as view:
        yield view
