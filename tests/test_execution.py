"""Running a campaign-shaped flow through the LaunchPad in this process (``run_here``), killed and continued."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlipflow.execution import HERE_KEY, campaign_workflow, firework_name, run_here

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def demo(monkeypatch, tmp_path):
    """The demo flow module (tests/demo_flow.py) with its log and go-file in tmp_path."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("DEMO_LOG", str(tmp_path / "ran.log"))
    monkeypatch.setenv("DEMO_GO", str(tmp_path / "go"))
    import demo_flow

    return demo_flow


def _ran(tmp_path: Path) -> list[str]:
    path = tmp_path / "ran.log"
    return [line.rsplit(" ", 1)[0] for line in path.read_text().splitlines()] if path.exists() else []


def test_firework_names_carry_campaign_iteration_and_stage():
    def name(iteration, stage, job):
        return firework_name({"campaign": "toy", "iteration": iteration, "stage": stage}, job)

    assert name(1, "decide", "decide iteration 1") == "toy it1 decide"
    assert name(0, "label", "label batch 0") == "toy it0 label: batch 0"
    assert name(0, "start", "start_campaign") == "toy it0 start: start_campaign"
    assert firework_name({}, "hello") == "hello"


def test_run_here_puts_the_campaign_on_the_launchpad_with_readable_names(stores, demo, tmp_path):
    states = run_here(demo.make("demo"), stores, campaign="demo", spec={"v": 1}, root_dir=tmp_path / "launches")
    assert states == {"COMPLETED": 9}  # 4 jobs; 2 batches, a summary and store_inputs for the plan; 1 added
    wf = campaign_workflow(stores.launchpad, "demo")
    assert wf["name"] == "demo" and wf["metadata"][HERE_KEY] and wf["state"] == "COMPLETED"
    names = sorted(fw["name"] for fw in stores.launchpad.fireworks.find({}, {"name": 1}))
    assert names == ["demo it0 label", "demo it0 label: batch 0", "demo it0 label: batch 1",
                     "demo it0 label: store_inputs", "demo it0 label: summary", "demo it0 structures",
                     "demo it0 train: mace train 1/2", "demo it1 decide", "demo it1 pick: picked_structures_job"]
    assert sorted(_ran(tmp_path)) == sorted(["structures", "label batch 0", "label batch 1", "label summary",
                                             "mace train 1/2", "decide 1", "picked_structures_job"])
    # the same spec again, after the campaign's decision to stop: the finished workflow is kept, nothing reruns
    stores.campaigns.insert_one({"_id": "demo", "state": "converged"})
    run_here(demo.make("demo"), stores, campaign="demo", spec={"v": 1}, root_dir=tmp_path / "launches")
    assert len(_ran(tmp_path)) == 7 and stores.launchpad.workflows.count_documents({}) == 1
    # another spec: the old workflow is archived, a new one runs
    run_here(demo.make("demo"), stores, campaign="demo", spec={"v": 2}, root_dir=tmp_path / "launches")
    assert len(_ran(tmp_path)) == 14
    assert {w["state"] for w in stores.launchpad.workflows.find({}, {"state": 1})} == {"ARCHIVED", "COMPLETED"}


def _start_and_wait(tmp_path: Path, demo_env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(TESTS / "demo_flow.py"), "demo"], cwd=tmp_path, env=demo_env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        if "mace train 1/2" in _ran(tmp_path):
            return proc
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        time.sleep(0.1)
    raise AssertionError("the demo run never reached its training step")


def test_a_killed_run_continues_where_it_stopped(stores, demo, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    proc = _start_and_wait(tmp_path, env)
    os.killpg(proc.pid, signal.SIGKILL)  # as a crash or a power cut: the training firework stays RUNNING
    proc.wait(30)
    lp = stores.launchpad
    assert lp.fireworks.count_documents({"state": "RUNNING"}) == 1
    (tmp_path / "go").touch()
    states = run_here(demo.make("demo", wait=True), stores, campaign="demo", spec={"demo": 1},
                      root_dir=tmp_path / "launches")
    assert states == {"COMPLETED": 9}
    ran = _ran(tmp_path)
    assert ran.count("structures") == 1 and ran.count("label batch 0") == 1  # finished work is not repeated
    assert ran.count("mace train 1/2") == 2  # the step the kill cut short runs again
    assert lp.workflows.count_documents({}) == 1  # the same workflow went on


def test_ctrl_c_stops_the_run_instead_of_going_on_with_the_next_job(stores, demo, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    proc = _start_and_wait(tmp_path, env)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert "decide 1" not in _ran(tmp_path)  # it stopped: the next job did not start
    lp = stores.launchpad
    assert lp.fireworks.count_documents({"state": "FIZZLED"}) == 1  # FireWorks' record of the interruption
    (tmp_path / "go").touch()
    assert run_here(demo.make("demo", wait=True), stores, campaign="demo", spec={"demo": 1},
                    root_dir=tmp_path / "launches") == {"COMPLETED": 9}
