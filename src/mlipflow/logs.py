"""Where the command line's log records go: everything to a log file, little to the console.

:func:`configure` (called once by the CLI) routes every logger to the root logger: a console handler shows
warnings (INFO with ``-v``, DEBUG with ``--debug``) minus known third-party noise, and :func:`log_to_file`
adds a file under ``MLIPFLOW_HOME/logs`` that keeps the full log (DEBUG of mlipflow, INFO of the rest, every
warning, the lines libraries print).  Libraries that print instead of logging (CHGNet prints its "isolated
atom" warning once per isolated-atom label; FireWorks prints tracebacks of failed fireworks) are caught by
:func:`captured_output` while a campaign or a worker runs: their lines become log records of the ``print``
logger, so they reach the file and stay off the console.

jobflow (re)installs a stdout handler on its ``jobflow`` logger before every job it runs through FireWorks;
its module loggers are detached from it and forwarded to the root logger instead, so that "Starting job"
lines go to the file and to the progress view (:mod:`mlipflow.campaign.progress`), not to the screen.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

#: known, harmless third-party messages that stay in the log file and off the console (``--debug`` shows them)
NOISE = tuple(re.compile(p) for p in (
    r"Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected",  # we set it on purpose (e3nn, mace)
    r"cd is deprecated",  # jobflow's use of monty
    r"Converting a tensor with requires_grad=True to a scalar",
    r"Some jobs are not connected, their ordering may be random",
    r"isolated atom\(s\) with atom_graph_cutoff",  # CHGNet on the isolated-atom (E0) labels: deliberate
    r"CHGNet will run on|CHGNet v?[\d.]* ?initialized with",
    r"cuequivariance or cuequivariance_torch is not available",  # mace-torch on CPU
    r"The TorchScript type system doesn't support instance-level annotations",  # mace's model compilation
))
#: loggers of FireWorks, which print through handlers of their own (``strm_lvl``): not printed twice
_SELF_PRINTING = ("launchpad", "rocket.launcher")
#: jobflow's module loggers (their parent ``jobflow`` gets a fresh stdout handler before each job)
_JOBFLOW_LOGGERS = ("jobflow.core.job", "jobflow.core.flow", "jobflow.managers.local")
#: logger of the lines that libraries print while output is captured
PRINT_LOGGER = "print"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class NoiseFilter(logging.Filter):
    """Drop records whose message matches :data:`NOISE` and records of FireWorks' self-printing loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".")[0] in _SELF_PRINTING or record.name in _SELF_PRINTING:
            return False
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to judge
            return True
        return not any(p.search(message) for p in NOISE)


class _NotALogLine(logging.Filter):
    """Drop printed lines that are log lines already: FireWorks' stream handlers print records that reach
    the log file through the logging tree anyway."""

    _LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")

    def filter(self, record: logging.LogRecord) -> bool:
        return not self._LOG_LINE.match(str(record.msg))


class ConsoleHandler(logging.Handler):
    """Writes records to a stream, or through a rich console while a live view owns the terminal."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self.stream = stream
        self.console: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if self.console is not None:
                self.console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                self.stream.write(text + "\n")
                self.stream.flush()
        except Exception:
            self.handleError(record)


class _ToRoot(logging.Handler):
    """Hands a record to the root logger's handlers (used for jobflow's detached module loggers)."""

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        if record.levelno >= root.getEffectiveLevel():
            root.handle(record)


_state: dict[str, Any] = {"console": None, "files": {}}


def configure(verbose: bool = False, debug: bool = False, stream: IO[str] | None = None) -> ConsoleHandler:
    """Set up logging for the command line (idempotent); return the console handler.

    Console: WARNING (INFO with ``verbose``, DEBUG of mlipflow with ``debug``) without :data:`NOISE`
    (``debug`` shows the noise too).  Python warnings become log records (``py.warnings``).
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    logging.getLogger("mlipflow").setLevel(logging.DEBUG)
    logging.getLogger("mlipflow").propagate = True
    for name in ("jobflow", "launchpad", "rocket.launcher"):
        logging.getLogger(name).propagate = True
    for name in _JOBFLOW_LOGGERS:
        lg = logging.getLogger(name)
        lg.propagate = False
        if not any(isinstance(h, _ToRoot) for h in lg.handlers):
            lg.addHandler(_ToRoot())
    handler = _state["console"]
    if handler is None:
        handler = ConsoleHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        _state["console"] = handler
    elif stream is not None:
        handler.stream = stream
    handler.filters.clear()
    if not debug:
        handler.addFilter(NoiseFilter())
    handler.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    # again from scratch: a warnings.catch_warnings() that exited since the last capture (pytest's, or a library's)
    # restored warnings.showwarning behind logging's back, and captureWarnings(True) alone would then be a no-op
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    printed = logging.getLogger(PRINT_LOGGER)
    if not any(isinstance(f, _NotALogLine) for f in printed.filters):
        printed.addFilter(_NotALogLine())
    return handler


def reset() -> None:
    """Undo :func:`configure` and :func:`log_to_file` (handlers removed, warnings no longer captured)."""
    root = logging.getLogger()
    handlers = [_state["console"], *_state["files"].values()]
    for handler in handlers:
        if handler is not None:
            root.removeHandler(handler)
            handler.close()
    _state["console"], _state["files"] = None, {}
    logging.captureWarnings(False)


def child_setup() -> dict[str, Any]:
    """What a spawned worker process needs to log as this process does (see :func:`apply_child_setup`)."""
    console = _state["console"]
    return {"files": list(_state["files"]), "console_level": None if console is None else console.level,
            "quiet": console is not None and bool(console.filters)}


def apply_child_setup(setup: dict[str, Any] | None) -> None:
    """In a spawned worker: the parent's log files (appended, no header), its console level and noise filter,
    warnings captured, and what libraries print turned into ``print`` records for the rest of the process."""
    if not setup:
        return
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    logging.getLogger("mlipflow").setLevel(logging.DEBUG)
    for path in setup.get("files") or []:
        if path not in _state["files"]:
            handler = logging.FileHandler(path, encoding="utf-8")
            handler.setFormatter(logging.Formatter(FORMAT))
            handler.setLevel(logging.DEBUG)
            root.addHandler(handler)
            _state["files"][path] = handler
    if setup.get("console_level") is not None and _state["console"] is None:
        console = ConsoleHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        console.setLevel(int(setup["console_level"]))
        if setup.get("quiet"):
            console.addFilter(NoiseFilter())
        root.addHandler(console)
        _state["console"] = console
    logging.captureWarnings(True)
    printed = logging.getLogger(PRINT_LOGGER)
    sys.stdout = _LineLogger(printed, logging.INFO)  # type: ignore[assignment]
    sys.stderr = _LineLogger(printed, logging.INFO)  # type: ignore[assignment]


def console_handler() -> ConsoleHandler | None:
    """The handler :func:`configure` installed (``None`` before)."""
    return _state["console"]


def log_dir(home: Path) -> Path:
    """``home/logs`` (created)."""
    path = Path(home) / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_to_file(home: Path, name: str) -> Path:
    """Append the full log to ``home/logs/<name>.log`` from now on; return its path (idempotent per path).

    The file receives DEBUG records of mlipflow and INFO records of every library, warnings included, and the
    lines libraries print while :func:`captured_output` is active.  A run starts with a dated header line.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    path = log_dir(home) / f"{safe}.log"
    files = _state["files"]
    if str(path) not in files:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.setLevel(logging.DEBUG)
        logging.getLogger().addHandler(handler)
        files[str(path)] = handler
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"===== {datetime.now():%Y-%m-%d %H:%M:%S} mlipflow {' '.join(sys.argv[1:])}\n")
    return path


class _LineLogger(io.TextIOBase):
    """A text stream that turns each written line into a log record."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger = logger
        self.level = level
        self._buffer = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                self.logger.log(self.level, line.rstrip())
        return len(text)

    def flush(self) -> None:
        with self._lock:
            rest, self._buffer = self._buffer, ""
        if rest.strip():
            self.logger.log(self.level, rest.rstrip())

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def captured_output() -> Iterator[tuple[IO[str], IO[str]]]:
    """Turn what is printed to ``sys.stdout``/``sys.stderr`` into records of the ``print`` logger.

    Yields the real stdout and stderr, for whoever still has to write to the terminal (the progress view).
    Handlers that hold a stream of their own (the console handler, FireWorks' stream handlers) keep it.
    """
    out, err = sys.stdout, sys.stderr
    logger = logging.getLogger(PRINT_LOGGER)
    fake_out, fake_err = _LineLogger(logger, logging.INFO), _LineLogger(logger, logging.INFO)
    sys.stdout, sys.stderr = fake_out, fake_err  # type: ignore[assignment]
    try:
        yield out, err
    finally:
        fake_out.flush()
        fake_err.flush()
        sys.stdout, sys.stderr = out, err
