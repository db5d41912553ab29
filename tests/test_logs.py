"""The console shows warnings without third-party noise; the log file keeps everything, printed lines too."""

from __future__ import annotations

import io
import logging
import warnings

import pytest

from mlipflow.logs import captured_output, configure, log_to_file, reset


@pytest.fixture
def console():
    stream = io.StringIO()
    configure(stream=stream)
    yield stream
    reset()


def test_console_shows_warnings_and_the_file_everything(console, tmp_path):
    path = log_to_file(tmp_path, "demo")
    log = logging.getLogger("mlipflow.demo")
    log.info("an info line")
    log.warning("a warning line")
    logging.getLogger("jobflow.core.job").info("Starting job - x (00000000-0000-0000-0000-000000000000)")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("Some jobs are not connected, their ordering may be random", UserWarning, stacklevel=1)
    with captured_output():
        print("a library prints this")
    shown = console.getvalue()
    assert "a warning line" in shown
    assert "an info line" not in shown and "Starting job" not in shown and "a library prints" not in shown
    assert "not connected" not in shown  # known noise
    text = path.read_text()
    for line in ("an info line", "a warning line", "Starting job - x", "not connected", "a library prints this"):
        assert line in text


def test_verbose_shows_info(tmp_path):
    stream = io.StringIO()
    configure(verbose=True, stream=stream)
    try:
        logging.getLogger("mlipflow.demo").info("now visible")
    finally:
        reset()
    assert "now visible" in stream.getvalue()


def test_chgnet_isolated_atom_warning_stays_in_the_log_file(console, tmp_path):
    """CHGNet prints "... isolated atom(s) ... will likely go wrong" for every isolated-atom (E0) label."""
    from pymatgen.core import Lattice, Structure

    from mlipflow.labeling.surrogate import SurrogateLabeler

    path = log_to_file(tmp_path, "chgnet")
    atom = Structure(Lattice.cubic(15.0), ["Li"], [[0.5, 0.5, 0.5]])
    with captured_output():
        labeler = SurrogateLabeler(calculator="chgnet")
        labeler.setup()
        result = labeler.label_one(atom, None)
    assert result.energy is not None
    assert "isolated atom" not in console.getvalue() and "CHGNet" not in console.getvalue()
    assert "will likely go wrong" in path.read_text()


def test_a_spawned_worker_logs_to_the_parents_file_not_the_terminal(console, tmp_path, capfd):
    from mlipflow.parallel import map_in_processes

    path = log_to_file(tmp_path, "demo")
    # ``print(context, text)`` in the worker: a library printing from a spawned process
    map_in_processes(print, [("a worker prints this",)], processes=1)
    out, err = capfd.readouterr()
    assert "a worker prints this" not in out + err + console.getvalue()
    assert "a worker prints this" in path.read_text()
