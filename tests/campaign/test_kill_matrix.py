"""Resume reproduces the uninterrupted run, whatever the kill point (the kill matrix).

The toy campaign (2 epochs per training) runs once uninterrupted; then, for each kill point, a fresh copy runs
with ``mlipflow run`` in its own MLIPFLOW_HOME, is SIGKILLed (the whole process group, mace children included)
when the point is reached, and is finished with ``mlipflow resume``.  Kill points are read from the store while
the campaign runs: the finished jobs' metadata (iteration, stage) in the JobStore, the surrogate's call log
(labeling) and mace-torch's checkpoints (training phases).  Each resumed campaign must end in the state of the
uninterrupted one: the same labeled frame ids, dataset version ids and model ids (model ids are content hashes
of the model files: equal ids mean bit-identical weights), and no frame labeled twice.

Set ``MLIPFLOW_KILL_MATRIX`` to a file path to get the table (markdown) written there.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlipflow.settings import load_settings
from mlipflow.storage import get_stores

_LOOP = importlib.util.spec_from_file_location("_toy_loop_tests", Path(__file__).with_name("test_loop.py"))
_loop = importlib.util.module_from_spec(_LOOP)
_LOOP.loader.exec_module(_loop)  # the toy spec and the surrogate that logs its calls (one home: test_loop.py)
COUNTING_CALCULATOR, SPEC = _loop.COUNTING_CALCULATOR, _loop.SPEC

pytestmark = pytest.mark.slow

NAME = "toy-kill"
#: the toy shrunk further: 2 epochs per training (epoch 0 is stage one, epoch 1 stage two)
KILL_SPEC = {**SPEC, "name": NAME, "labeler": {**SPEC["labeler"], "calculator": "countcalc:make"},
             "trainer": {**SPEC["trainer"], "hyperparams": {**SPEC["trainer"]["hyperparams"], "max_num_epochs": 2}}}


def _env(home: Path, log: Path, sleep: float = 0.0) -> dict[str, str]:
    return dict(os.environ, MLIPFLOW_HOME=str(home), OMP_NUM_THREADS="1", PYTHONPATH=str(home.parent),
                COUNT_LOG=str(log), COUNT_SLEEP=str(sleep), COLUMNS="250")


class Watch:
    """What a running campaign has done so far, read from its store and files (no help from the runner)."""

    def __init__(self, home: Path, log: Path) -> None:
        self.home, self.log = home, log
        self._stores = None

    @property
    def stores(self) -> Any:
        if self._stores is None:
            self._stores = get_stores(load_settings(home=self.home))
        return self._stores

    def calls(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0

    def finished(self) -> Counter:
        """Finished jobs per (iteration, stage), from the JobStore's job metadata."""
        docs = self.stores.jobstore.query({"metadata.campaign": NAME, "metadata.stage": {"$exists": True}},
                                          properties=["metadata"])
        return Counter((int(d["metadata"].get("iteration", 0)), str(d["metadata"]["stage"])) for d in docs)

    def checkpoints(self) -> int:
        """Training run directories holding the checkpoint of epoch 0 (stage one done, stage two under way)."""
        root = self.home / "training"
        return sum(1 for d in root.glob("*") if any((d / "checkpoints").glob("*_epoch-0*.pt"))) if root.is_dir() else 0

    def trainings(self) -> int:
        root = self.home / "training"
        return sum(1 for d in root.glob("*") if (d / "mace_args.json").is_file()) if root.is_dir() else 0

    def last(self) -> str:
        done = self.finished()
        if not done:
            return "nothing finished"
        iteration, stage = max(done, key=lambda k: (k[0], _ORDER.index(k[1]) if k[1] in _ORDER else -1))
        return f"after {stage} of iteration {iteration}"


_ORDER = ("start", "structures", "label", "reference_md", "explore", "select", "decide", "pick", "assess",
          "dataset", "train", "benchmark")


def end_state(home: Path) -> dict[str, Any]:
    """Labeled frame ids, dataset version ids, model ids, the largest attempts count and the campaign's end."""
    stores = get_stores(load_settings(home=home))
    doc = stores.campaigns.find_one({"_id": NAME}) or {}
    return {
        "frames": sorted(d["_id"] for d in stores.frames.find({"status": "labeled"}, {"_id": 1})),
        "attempts": max((d.get("attempts", 0) for d in stores.frames.find({}, {"attempts": 1})), default=0),
        "versions": sorted(str(d["_id"]) for d in stores.datasets.find({}, {"_id": 1})),
        "models": sorted(str(d["_id"]) for d in stores.models.find({}, {"_id": 1})),
        "state": doc.get("state"), "iterations": [it["iteration"] for it in doc.get("iterations") or []],
    }


def _write(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "countcalc.py").write_text(COUNTING_CALCULATOR)
    path = root / "toy.yaml"
    path.write_text(yaml.safe_dump(KILL_SPEC, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("whole")
    path = _write(root)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mlipflow", "run", str(path)], cwd=root,
                          env=_env(root / "home", root / "calls.log"), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    state = end_state(root / "home")
    state["finished"] = Watch(root / "home", root / "calls.log").finished()
    state["seconds"] = time.monotonic() - start
    return state


def _complete(stage: tuple[int, str]) -> Callable[[Watch, dict], bool]:
    """Every job of ``stage`` has finished (as many as in the uninterrupted run): killed in what follows."""
    return lambda w, ref: w.finished()[stage] >= ref["finished"][stage] > 0


#: (kill point, predicate on the running campaign, surrogate's seconds per label of the killed run)
POINTS: list[tuple[str, Callable[[Watch, dict], bool], float]] = [
    ("labeling, iteration 0 (6 of 19 labels)", lambda w, ref: w.calls() >= 6, 0.3),
    ("training iteration 0, stage one (before any checkpoint)",
     lambda w, ref: _complete((0, "dataset"))(w, ref) and w.trainings() >= 1 and w.checkpoints() == 0, 0.0),
    ("training iteration 0, stage two (after epoch 0's checkpoint)",
     lambda w, ref: w.checkpoints() >= 1 and not w.finished()[(0, "train")], 0.0),
    ("committee MD, iteration 1", _complete((0, "train")), 0.0),
    ("selection, iteration 1", _complete((1, "explore")), 0.0),
    ("decision, iteration 1", _complete((1, "select")), 0.0),
    ("labeling the picks, iteration 1", _complete((1, "pick")), 0.0),
    ("dataset version, iteration 1", _complete((1, "assess")), 0.0),
    ("training iteration 1, stage two", lambda w, ref: _complete((1, "dataset"))(w, ref) and w.checkpoints() >= 3, 0.0),
    ("committee MD, iteration 2", _complete((1, "train")), 0.0),
    ("decision, iteration 2", _complete((2, "select")), 0.0),
    ("benchmark stage", _complete((2, "decide")), 0.0),
]

ROWS: list[str] = []


@pytest.mark.parametrize(("point", "killed_when", "sleep"), POINTS, ids=[p[0].split(",")[0].replace(" ", "-") + str(i)
                                                                      for i, p in enumerate(POINTS)])
def test_resume_after_a_kill_ends_in_the_uninterrupted_state(uninterrupted, tmp_path, point, killed_when, sleep):
    path = _write(tmp_path)
    home, log = tmp_path / "home", tmp_path / "calls.log"
    watch = Watch(home, log)
    proc = subprocess.Popen([sys.executable, "-m", "mlipflow", "run", str(path)], cwd=tmp_path,
                            env=_env(home, log, sleep), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and not (home.is_dir() and killed_when(watch, uninterrupted)):
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)
    killed = proc.returncode == -signal.SIGKILL
    at_kill = f"{watch.last()}; {watch.calls()} label calls" if killed else "not killed: the run had finished"
    at = end_state(home)
    resumed = f"{at['state']}, {len(at['frames'])} labels, {len(at['versions'])} versions, {len(at['models'])} models"
    done = subprocess.run([sys.executable, "-m", "mlipflow", "resume", NAME], cwd=tmp_path, env=_env(home, log),
                          capture_output=True, text=True, timeout=1800)
    end = end_state(home)
    same = {k: end[k] == uninterrupted[k] for k in ("frames", "versions", "models")}
    ended = f"{end['state']}, iterations {end['iterations']} (resume exit {done.returncode})"
    ROWS.append(f"| {point} | {at_kill} | {resumed} | {ended} | {'yes' if same['frames'] else 'NO'} | "
                f"{'yes' if same['versions'] else 'NO'} | {'yes' if same['models'] else 'NO'} | {end['attempts']} |")
    table = ["| kill point | killed at | state at kill | resumed state | same frames | same versions | same models "
             "| attempts max |", "|---|---|---|---|---|---|---|---|", *ROWS]
    if os.environ.get("MLIPFLOW_KILL_MATRIX"):
        Path(os.environ["MLIPFLOW_KILL_MATRIX"]).write_text("\n".join(table) + "\n")
    assert killed, f"{point}: the campaign finished before the kill point was seen"
    assert done.returncode == 0, done.stderr[-2000:]
    assert end["state"] == uninterrupted["state"] and end["iterations"] == uninterrupted["iterations"]
    assert same == {"frames": True, "versions": True, "models": True}, (point, end, uninterrupted)
    assert end["attempts"] == 1
