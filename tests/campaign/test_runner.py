"""One runner per campaign, claimed atomically; a deterministic failure leaves the campaign ``failed``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mlipflow.campaign.runner import (
    CampaignBusyError,
    claim_campaign,
    release_campaign,
    resume_campaign,
    run_campaign,
)
from mlipflow.campaign.spec import CampaignSpec
from mlipflow.campaign.status import campaign_status
from mlipflow.errors import ConfigError

TOY = Path(__file__).resolve().parents[2] / "flows" / "campaign_toy.yaml"
SPEC = yaml.safe_load(TOY.read_text())
MLIPFLOW = [sys.executable, "-m", "mlipflow"]

CLAIMER = """
import json, os, sys, time
from pathlib import Path
from mlipflow.campaign.runner import CampaignBusyError, claim_campaign
from mlipflow.storage import get_stores
stores = get_stores()
stores.campaigns.find_one({})  # the store is open
go = Path(sys.argv[1])
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.005)
try:
    runner = claim_campaign(stores, "race")
    print(json.dumps({"won": os.getpid()}), flush=True)
    time.sleep(3)  # stays alive while the others look at who holds the campaign
except CampaignBusyError as exc:
    print(json.dumps({"busy": str(exc)}), flush=True)
"""


def test_of_many_processes_claiming_at_once_exactly_one_runs_the_campaign(stores, tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(go)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ)) for _ in range(4)]
    for _ in range(3000):  # until every process has the store open and waits for the signal
        if len(list(tmp_path.glob("ready-*"))) == len(procs):
            break
        time.sleep(0.05)
    go.touch()
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    winners = [r["won"] for r in results if "won" in r]
    assert len(winners) == 1
    busy = [r["busy"] for r in results if "busy" in r]
    assert len(busy) == 3 and all(f"already running here (pid {winners[0]}," in b for b in busy)
    assert stores.campaigns.find_one({"_id": "race"})["runner"]["pid"] == winners[0]


def test_a_dead_runner_or_a_reused_pid_is_taken_over_and_release_needs_the_token(stores):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stores.campaigns.insert_one({"_id": "x", "state": "running",
                                 "runner": {"host": socket.gethostname(), "pid": dead.pid, "token": "old"}})
    mine = claim_campaign(stores, "x")
    assert stores.campaigns.find_one({"_id": "x"})["runner"]["token"] == mine["token"]
    release_campaign(stores, "x", {"token": "old"})  # not the holder: nothing happens
    assert stores.campaigns.find_one({"_id": "x"})["runner"]["token"] == mine["token"]
    release_campaign(stores, "x", mine)
    assert "runner" not in stores.campaigns.find_one({"_id": "x"})
    # a live pid that is now another process (the recorded process start differs) counts as gone
    stores.campaigns.update_one({"_id": "x"}, {"$set": {"runner": {
        "host": socket.gethostname(), "pid": os.getppid(), "started": "another boot:1", "token": "stale"}}})
    assert claim_campaign(stores, "x")["pid"] == os.getpid()


SLOW_CALCULATOR = """
import time
from mlipflow.training.synthetic import ToyMorseCalculator

class Slow(ToyMorseCalculator):
    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        time.sleep(0.5)
        super().calculate(atoms, properties, system_changes or [])

def make(**kwargs):
    return Slow(**kwargs)
"""


def test_a_second_run_or_resume_is_refused_naming_who_runs_it(stores, tmp_path, monkeypatch):
    (tmp_path / "slowcalc.py").write_text(SLOW_CALCULATOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "labeler": {**SPEC["labeler"], "calculator": "slowcalc:make"}}))
    env = dict(os.environ, PYTHONPATH=str(tmp_path), OMP_NUM_THREADS="1", COLUMNS="300")
    first = subprocess.Popen([*MLIPFLOW, "run", str(path)], cwd=tmp_path, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):  # until the first run is labeling
            if stores.frames.count_documents({"status": "labeled"}):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the first run did not start labeling")
        second = subprocess.run([*MLIPFLOW, "run", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert (f"error: campaign toy is already running here (pid {first.pid}, since" in second.stderr
                and f"`kill {first.pid}`" in second.stderr), second.stderr
        with pytest.raises(CampaignBusyError, match=rf"already running here \(pid {first.pid},"):
            resume_campaign(stores, "toy")
        claimed_by = {d["claim"]["pid"] for d in stores.frames.find({"claim": {"$ne": None}}, {"claim": 1})}
        assert claimed_by <= {first.pid}  # the refused runs labeled nothing
        assert stores.campaigns.find_one({"_id": "toy"})["runner"]["pid"] == first.pid
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)


FAILING_FACTORY = """
def make(**kwargs):
    raise ValueError("this calculator needs a cutoff below 3 Å")
"""


def test_a_deterministic_error_marks_the_campaign_failed_and_says_what_to_change(stores, tmp_path, monkeypatch):
    (tmp_path / "badcalc.py").write_text(FAILING_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = CampaignSpec(**{**SPEC, "labeler": {**SPEC["labeler"], "calculator": "badcalc:make"}})
    doc = run_campaign(stores, spec, root_dir=tmp_path / "runs")
    assert doc["state"] == "failed" and "runner" not in doc
    failure = doc["failure"]
    assert failure["stage"] == "label" and failure["iteration"] == 0
    assert failure["reason"] == "ValueError: this calculator needs a cutoff below 3 Å"
    assert stores.frames.count_documents({"status": "running"}) == 0  # the claimed frame was given back
    status = campaign_status(stores, "toy")
    assert status["next"].startswith("nothing until the input is fixed: ")
    assert "cutoff below 3 Å" in status["next"] and "mlipflow resume" not in status["next"]
    with pytest.raises(ConfigError, match="Resuming would repeat this: change what it names in the campaign file"):
        resume_campaign(stores, "toy")
    shown = subprocess.run([*MLIPFLOW, "status", "toy"], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, COLUMNS="300")).stdout
    assert "resume" not in shown.split("next:")[-1] and "change what it names in the campaign file" in shown
    # run again (here with another wrong input): it runs, and the failure it records is the new one
    (tmp_path / "badcalc2.py").write_text(FAILING_FACTORY.replace("ValueError", "TypeError").replace(
        "needs a cutoff below 3 Å", "takes no e0s"))
    other = CampaignSpec(**{**SPEC, "labeler": {**SPEC["labeler"], "calculator": "badcalc2:make"}})
    again = run_campaign(stores, other, root_dir=tmp_path / "runs")
    assert again["state"] == "failed" and again["failure"]["reason"] == "TypeError: this calculator takes no e0s"


def test_run_command_on_a_failing_campaign_exits_1_naming_the_file_to_change(stores, tmp_path):
    (tmp_path / "badcalc.py").write_text(FAILING_FACTORY)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "labeler": {**SPEC["labeler"], "calculator": "badcalc:make"}}))
    proc = subprocess.run([*MLIPFLOW, "run", str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path), COLUMNS="300"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert error == [f"error: campaign toy failed in label batch 0 (iteration 0, stage label): ValueError: this "
                     f"calculator needs a cutoff below 3 Å. Resuming would repeat this: change what it names in the "
                     f"campaign file, then `mlipflow run {path}` (finished labels and trainings are reused)"], error
    with pytest.raises(CampaignBusyError.__mro__[1]):  # ConfigError: a failed campaign is not resumed
        resume_campaign(stores, "toy")


def test_a_submitted_campaign_is_neither_run_here_nor_submitted_twice(stores, tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    first = subprocess.run([*MLIPFLOW, "submit", str(path)], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr
    queued = stores.launchpad.fireworks.count_documents({})
    assert stores.campaigns.find_one({"_id": "toy"}) is None  # recorded by its first job, not by the claim
    second = subprocess.run([*MLIPFLOW, "submit", str(path)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, COLUMNS="300"))
    assert second.returncode == 1 and f"error: campaign toy is submitted: {queued} of its jobs wait or run on " \
        "the LaunchPad" in second.stderr
    assert stores.launchpad.fireworks.count_documents({}) == queued
    with pytest.raises(CampaignBusyError, match="let the workers finish it"):
        run_campaign(stores, CampaignSpec(**SPEC), root_dir=tmp_path)
    assert stores.campaigns.find_one({"_id": "toy"}) is None and stores.frames.count_documents({}) == 0
