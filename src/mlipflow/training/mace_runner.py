"""Run mace-torch's own training entry point in a child process, watch it, resume it.

The child runs ``python -m mlipflow.training.mace_entry <mace args>`` (that is ``mace.cli.run_train.main``
after ``torch.set_num_threads``) inside a *stable* run directory.  When a run is killed and started again
with the same directory, an unfinished run starts again from epoch 0 (:func:`discard_partial_run`: a
mace-torch checkpoint cannot continue a run exactly, a seeded fresh start reproduces it), and a finished
one is used as it is.

While it runs, the parent follows mace-torch's results file (one JSON line per step and per validation),
logs one line per epoch, and stops the child at once if a loss becomes NaN/infinite or the validation
loss grows above ``divergence_factor`` times the larger of the best and the first validation loss
(a clear :class:`TrainingError`; the diverged run directory is set aside so that a rerun does not
resume from broken weights).  The child dies with the parent (``PR_SET_PDEATHSIG`` on Linux).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlipflow.errors import TrainingError
from mlipflow.training.curves import EpochPoint, TrainingCurves, parse_results_file
from mlipflow.training.hyperparams import options_to_args

logger = logging.getLogger(__name__)

STATUS_FILE = "mlipflow_status.json"
#: in-process torch work (loading, saving, TorchScript-compiling models) takes turns: committee members train in
#: parallel threads, and torch.fx/e3nn's tracing is not thread-safe ("module is not installed as a submodule")
TORCH_LOCK = threading.RLock()


@dataclass
class MaceRunResult:
    """What a finished mace-torch run left behind.

    Attributes
    ----------
    run_dir
        The run directory (checkpoints, logs, results, models).
    model_path
        The final ``.model`` file (stage two's when stage two/SWA ran).
    compiled_path
        The TorchScript-compiled model mace-torch wrote, if it could.
    curves
        Per-epoch curves parsed from the results file.
    kept_epoch
        The epoch (0-based) whose weights ``model_path`` holds: the one with the lowest validation loss of the
        final stage (stage two's when it ran), see :func:`keep_best_epoch`.
    kept_rule
        How ``kept_epoch`` was chosen, in words.
    wall_time
        Seconds spent in mace-torch, summed over all attempts of this run.
    resumed
        True if an earlier, killed attempt of this run was discarded (or the run had already finished).
    log_path
        The child's combined stdout/stderr.
    """

    run_dir: Path
    model_path: Path
    compiled_path: Path | None
    curves: TrainingCurves
    wall_time: float
    resumed: bool
    log_path: Path
    kept_epoch: int | None = None
    kept_rule: str = ""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def results_path(run_dir: Path, name: str, seed: int) -> Path:
    """mace-torch's results file of a run (``results/<name>_run-<seed>_train.txt``)."""
    return Path(run_dir) / "results" / f"{name}_run-{seed}_train.txt"


def read_status(run_dir: Path) -> dict[str, Any]:
    """mlipflow's status file of a run directory (empty if none)."""
    path = Path(run_dir) / STATUS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_status(run_dir: Path, **values: Any) -> None:
    status = read_status(run_dir)
    status.update(values)
    (Path(run_dir) / STATUS_FILE).write_text(json.dumps(status, indent=1, default=str))


def _bad(value: float | None) -> bool:
    return value is not None and not math.isfinite(value)


class _Follower:
    """Reads new complete lines of the results file and checks them."""

    def __init__(self, path: Path, divergence_factor: float, total_epochs: int) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.is_file() else 0
        self.divergence_factor = divergence_factor
        self.total_epochs = total_epochs
        self.best = math.inf
        self.first: float | None = None
        self.problem: str | None = None

    def poll(self) -> list[EpochPoint]:
        if not self.path.is_file():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        points = []
        for line in data[: end + 1].decode().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            epoch = rec.get("epoch")
            loss = rec.get("loss")
            loss = float(loss) if loss is not None else None
            if rec.get("mode") == "opt" and _bad(loss):
                self.problem = f"training loss became {loss} during epoch {epoch}"
            elif rec.get("mode") == "eval":
                point = EpochPoint(
                    epoch=-1 if epoch is None else int(epoch), head=str(rec.get("head") or "Default"),
                    valid_loss=loss, rmse_e_per_atom=rec.get("rmse_e_per_atom"), rmse_f=rec.get("rmse_f"),
                )
                points.append(point)
                if _bad(loss) or _bad(point.rmse_f) or _bad(point.rmse_e_per_atom):
                    self.problem = f"validation loss/RMSE became NaN or infinite at epoch {point.epoch} ({point.head})"
                elif loss is not None:
                    # compared with the larger of the best and the first evaluated loss: a near-zero best on a
                    # tiny validation set must not make ordinary noise look like divergence
                    self.first = loss if self.first is None else self.first
                    scale = max(self.best, self.first)
                    if loss > self.divergence_factor * scale and point.epoch >= 0:
                        self.problem = (
                            f"validation loss diverged at epoch {point.epoch}: {loss:.4g} > {self.divergence_factor:g}"
                            f" x max(best {self.best:.4g}, first {self.first:.4g})"
                        )
                    self.best = min(self.best, loss)
        return points


def run_mace_train(
    options: dict[str, Any],
    run_dir: str | Path,
    *,
    name: str,
    seed: int,
    threads: int = 1,
    divergence_factor: float = 100.0,
    timeout: float | None = None,
    on_epoch: Callable[[EpochPoint], None] | None = None,
    poll_interval: float = 0.5,
) -> MaceRunResult:
    """Run (or resume) ``mace_run_train`` with ``options`` in ``run_dir``; return the result.

    Parameters
    ----------
    options
        mace-torch options (name -> value) except the directories, ``name`` and ``restart_latest``,
        which this function sets.  Paths in it should be absolute.
    run_dir
        Stable directory of this run: rerunning with the same directory resumes from its checkpoints.
    name, seed
        mace-torch experiment name and seed (its checkpoint tag is ``<name>_run-<seed>``).
    threads
        torch threads of the child (``MlipflowSettings.torch_threads``).
    divergence_factor
        Stop when the validation loss exceeds this many times the larger of the best validation loss so far
        and the first one.
    timeout
        Give up (and kill the child) after this many seconds (s); ``None``: no limit.
    on_epoch
        Called with each validation point as it appears; an exception raised in it kills the child
        and propagates (used to simulate a killed job in tests).
    poll_interval
        Seconds between looks at the results file (s).

    Raises
    ------
    TrainingError
        If mace-torch fails, a loss becomes NaN or diverges, or the timeout passes.
    """
    run_dir = Path(run_dir).absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = run_dir / "checkpoints"
    finished = _finished_run(run_dir, name=name, seed=seed)
    if finished is not None:
        return finished
    resumed = discard_partial_run(run_dir)
    full = dict(options)
    full.update(
        name=name, seed=seed, work_dir=str(run_dir), log_dir=str(run_dir / "logs"), model_dir=str(run_dir),
        checkpoints_dir=str(checkpoints), results_dir=str(run_dir / "results"), restart_latest=False, plot=False,
    )
    args = options_to_args(full)
    (run_dir / "mace_args.json").write_text(json.dumps(full, indent=1, default=str))
    log_path = run_dir / "mace_stdout.log"
    env = dict(os.environ)
    env.update(
        MLIPFLOW_TORCH_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
        TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", PYTHONUNBUFFERED="1",
    )
    total_epochs = int(full.get("max_num_epochs", 0))
    follower = _Follower(results_path(run_dir, name, seed), divergence_factor, total_epochs)
    logger.info("%s mace-torch training %s in %s (%d epochs)", "resuming" if resumed else "starting", name,
                run_dir, total_epochs)
    _write_status(run_dir, state="running", pid=None)
    start = time.monotonic()
    with open(log_path, "ab") as log_fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlipflow.training.mace_entry", *args],
            cwd=run_dir, stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        _write_status(run_dir, pid=proc.pid)
        try:
            while True:
                finished = proc.poll() is not None
                for point in follower.poll():
                    if point.epoch >= 0:
                        rmse_e = "n/a" if point.rmse_e_per_atom is None else f"{1e3 * point.rmse_e_per_atom:.2f}"
                        rmse_f = "n/a" if point.rmse_f is None else f"{1e3 * point.rmse_f:.1f}"
                        logger.info("%s epoch %d/%d [%s]: valid loss %.5g, RMSE E %s meV/atom, F %s meV/Å",
                                    name, point.epoch + 1, total_epochs, point.head, point.valid_loss or float("nan"),
                                    rmse_e, rmse_f)
                    if on_epoch is not None:
                        on_epoch(point)
                if follower.problem:
                    raise _DivergedError(follower.problem)
                if finished:
                    break
                if timeout is not None and time.monotonic() - start > timeout:
                    raise TrainingError(f"training {name} in {run_dir} did not finish within {timeout:.0f} s")
                time.sleep(poll_interval)
        except _DivergedError as exc:
            _kill(proc)
            elapsed = _add_wall_time(run_dir, start)
            aside = run_dir.with_name(f"{run_dir.name}.diverged-{int(time.time())}")
            shutil.move(str(run_dir), aside)
            raise TrainingError(
                f"training {name} stopped: {exc}. Nothing was registered; the run ({elapsed:.0f} s) is kept in "
                f"{aside} for inspection. Lower the learning rate (lr) or check the dataset's labels."
            ) from None
        except BaseException:
            _kill(proc)
            _add_wall_time(run_dir, start)
            _write_status(run_dir, state="interrupted", pid=None)
            raise
    wall = _add_wall_time(run_dir, start)
    if proc.returncode != 0:
        _write_status(run_dir, state="failed", pid=None)
        tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
        raise TrainingError(
            f"mace-torch training {name} failed (exit code {proc.returncode}) in {run_dir}; last lines of "
            f"{log_path}:\n" + "\n".join(tail)
        )
    swa = bool(full.get("swa"))
    model_path = run_dir / (f"{name}_stagetwo.model" if swa else f"{name}.model")
    compiled = run_dir / (f"{name}_stagetwo_compiled.model" if swa else f"{name}_compiled.model")
    if not model_path.is_file():
        raise TrainingError(f"mace-torch finished but wrote no model {model_path}; see {log_path}")
    curves = parse_results_file(results_path(run_dir, name, seed))
    if curves.has_nan():
        raise TrainingError(f"training {name} produced NaN losses (see {log_path}); not registered")
    start_swa = full.get("start_swa") if swa else None
    with TORCH_LOCK:
        best_path, kept, rule = keep_best_epoch(run_dir, model_path, curves, name=name, seed=seed,
                                                start_swa=None if start_swa is None else int(start_swa),
                                                all_checkpoints=bool(full.get("save_all_checkpoints")))
        if best_path != model_path:
            compiled = run_dir / f"{name}_best_compiled.model"
            _compile(best_path, compiled)
    _write_status(run_dir, state="done", pid=None, model=str(best_path), kept_epoch=kept, kept_rule=rule)
    return MaceRunResult(run_dir=run_dir, model_path=best_path, compiled_path=compiled if compiled.is_file() else None,
                         curves=curves, wall_time=wall, resumed=resumed, log_path=log_path, kept_epoch=kept,
                         kept_rule=rule)


#: what a run directory holds besides the prepared data: removed when a killed run starts again
_PARTIAL = ("checkpoints", "results", "logs")


def discard_partial_run(run_dir: Path) -> bool:
    """Remove what a killed (unfinished) mace-torch run left in ``run_dir``; return True if there was any.

    A mace-torch checkpoint cannot continue a run exactly: it holds the EMA-averaged weights (not the raw ones
    the optimizer was moving), no EMA shadow, no RNG state and no data-loader position, so a run resumed from
    it ends in another model than one never killed (measured: other weights, other validation errors, and in
    a campaign other MD, picks and dataset versions afterwards).  Training is seeded and deterministic on CPU,
    so starting again from epoch 0 reproduces the uninterrupted model exactly; the epochs done before the
    kill are lost (their wall time stays counted in the status file).  The prepared data (``data/``) is kept.
    """
    run_dir = Path(run_dir)
    present = [run_dir / part for part in _PARTIAL if (run_dir / part).exists()]
    present += [p for p in run_dir.glob("*.model")]
    if not present:
        return False
    for path in present:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    attempts = int(read_status(run_dir).get("discarded_attempts", 0)) + 1
    _write_status(run_dir, discarded_attempts=attempts)
    logger.warning("training in %s was killed before it finished: starting it again from epoch 0 (a mace-torch "
                   "checkpoint cannot continue it exactly); %d attempt(s) discarded", run_dir, attempts)
    return True


def _finished_run(run_dir: Path, *, name: str, seed: int) -> MaceRunResult | None:
    """The result of a run that finished (status ``done``) but whose caller was killed before using it."""
    status = read_status(run_dir)
    model = Path(str(status.get("model", "")))
    if status.get("state") != "done" or not model.is_file():
        return None
    compiled = model.with_name(model.stem + "_compiled.model")
    logger.info("training %s in %s had finished: using its model %s", name, run_dir, model.name)
    return MaceRunResult(run_dir=run_dir, model_path=model, compiled_path=compiled if compiled.is_file() else None,
                         curves=parse_results_file(results_path(run_dir, name, seed)),
                         wall_time=float(status.get("wall_time", 0.0)), resumed=True,
                         log_path=run_dir / "mace_stdout.log", kept_epoch=status.get("kept_epoch"),
                         kept_rule=str(status.get("kept_rule", "")))


def best_epoch(curves: TrainingCurves, start_swa: int | None = None, head: str | None = None) -> int | None:
    """The epoch with the lowest validation loss of the final stage (``epoch >= start_swa`` with stage two).

    Losses of the two stages are not comparable (stage two weights the energy more), so the best epoch is
    chosen within the stage the final model comes from.  ``head``: default ``Default`` (or the only head).
    """
    heads = curves.heads
    if not heads:
        return None
    head = head or ("Default" if "Default" in heads else heads[-1])
    points = [p for p in curves.for_head(head) if p.valid_loss is not None
              and (start_swa is None or p.epoch >= start_swa)]
    if not points:
        return None
    return min(points, key=lambda p: (p.valid_loss, p.epoch)).epoch


def keep_best_epoch(run_dir: Path, model_path: Path, curves: TrainingCurves, *, name: str, seed: int,
                    start_swa: int | None = None, all_checkpoints: bool = True) -> tuple[Path, int | None, str]:
    """Write ``<name>_best.model`` with the weights of the best-validation epoch; return (path, epoch, rule).

    mace-torch saves its final model from the *latest* checkpoint.  With ``save_all_checkpoints`` (which
    mlipflow turns on so that a killed run resumes from its last epoch) that is the last epoch, not the best:
    here the best epoch's checkpoint (EMA weights when EMA is on, as mace saves them) is loaded into the final
    model and saved.  Without all checkpoints mace keeps only the best ones, and its model is already the best.
    """
    stage = f"stage two (epochs >= {start_swa})" if start_swa is not None else "training"
    best = best_epoch(curves, start_swa)
    last = curves.last_epoch
    rule = f"lowest validation loss of {stage}"
    if best is None:
        return model_path, last if last >= 0 else None, "last epoch (no validation loss recorded)"
    if best == last or not all_checkpoints:
        return model_path, best, rule
    suffix = "_swa" if start_swa is not None and best >= start_swa else ""
    checkpoint = Path(run_dir) / "checkpoints" / f"{name}_run-{seed}_epoch-{best}{suffix}.pt"
    if not checkpoint.is_file():
        logger.warning("no checkpoint %s of the best epoch %d: keeping the last epoch %d", checkpoint, best, last)
        return model_path, last, f"last epoch (checkpoint of the best epoch {best} missing)"
    import torch

    model = torch.load(model_path, map_location="cpu", weights_only=False)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    out = Path(run_dir) / f"{name}_best.model"
    torch.save(model, out)
    logger.info("%s: kept epoch %d of %d (%s)", name, best + 1, last + 1, rule)
    return out, best, rule


def _compile(model_path: Path, out: Path) -> None:
    """TorchScript-compile a ``.model`` as mace-torch does (best effort: a failure leaves no compiled file)."""
    try:
        import torch
        from e3nn.util import jit

        torch.jit.save(jit.compile(torch.load(model_path, map_location="cpu", weights_only=False)), out)
    except Exception as exc:  # the compiled twin is optional
        logger.debug("could not compile %s: %s", model_path, exc)
        out.unlink(missing_ok=True)


class _DivergedError(Exception):
    pass


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover
        logger.warning("mace-torch child %d did not exit after SIGKILL", proc.pid)


def _add_wall_time(run_dir: Path, start: float) -> float:
    total = float(read_status(run_dir).get("wall_time", 0.0)) + (time.monotonic() - start)
    _write_status(run_dir, wall_time=total)
    return total
