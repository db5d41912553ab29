"""The nightly controller: one pass at a time, lost runs and failed jobs rerun, a summary written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fireworks import Firework, ScriptTask

from mlipflow.campaign.nightly import nightly_lock, run_nightly

MLIPFLOW = [sys.executable, "-m", "mlipflow"]


def test_second_concurrent_nightly_exits_cleanly(stores):
    with nightly_lock(stores.settings.home):  # as if a first nightly were running
        proc = subprocess.run([*MLIPFLOW, "nightly"], capture_output=True, text=True, env=dict(os.environ,
                              COLUMNS="200"), timeout=120)
    assert proc.returncode == 0
    assert "another `mlipflow nightly` is running" in proc.stdout
    assert not (stores.settings.home / "nightly" / "last.json").exists()  # it did nothing
    done = subprocess.run([*MLIPFLOW, "nightly"], capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert done.returncode == 0 and "first nightly pass" in done.stdout


def test_failed_jobs_rerun_up_to_a_limit(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lp = stores.launchpad
    lp.add_wf(Firework(ScriptTask.from_str("exit 3"), name="always-fails"))
    lp.add_wf(Firework(ScriptTask.from_str("true"), name="works"))
    first = run_nightly(stores, worker_launches=5)  # runs both: one fails
    assert first["failed_rerun"] == []
    second = run_nightly(stores, worker_launches=5)
    assert second["failed_rerun"] == [1]  # failed once: rerun (and it fails again in this pass)
    third = run_nightly(stores, worker_launches=5)
    assert third["failed_rerun"] == [] and third["failed_kept"] == [1]
    assert third["after"]["fireworks"] == {"FIZZLED": 1, "COMPLETED": 1}
    assert (stores.settings.home / "nightly" / "last.json").exists()


def test_lost_run_of_a_killed_worker_is_detected_and_rerun(stores, tmp_path):
    lp = stores.launchpad
    lp.add_wf(Firework(ScriptTask.from_str("sleep 120"), name="long"))
    worker = subprocess.Popen([*MLIPFLOW, "worker"], cwd=tmp_path, env=dict(os.environ), start_new_session=True)
    for _ in range(300):
        if lp.get_fw_by_id(1).state == "RUNNING":
            break
        time.sleep(0.2)
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its running job, as when a node dies
    worker.wait(30)
    assert lp.get_fw_by_id(1).state == "RUNNING"  # FireWorks cannot know yet
    # as if the kill came while the worker held FireWorks' workflow lock (a real race: it once hung this test)
    lp.workflows.update_one({"nodes": 1}, {"$set": {"locked": True}})
    time.sleep(2)
    summary = run_nightly(stores, expiration_secs=1)
    assert summary["lost_runs_rerun"] == [1]
    assert lp.get_fw_by_id(1).state == "READY"


def test_a_campaign_run_by_a_live_process_is_neither_resumed_nor_run_twice(stores):
    import socket

    import pytest
    import yaml

    from mlipflow.campaign.runner import run_campaign
    from mlipflow.campaign.spec import CampaignSpec
    from mlipflow.errors import ConfigError

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "flows" / "campaign_toy.yaml").read_text())
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the live runner
    try:
        stores.campaigns.insert_one({"_id": "toy", "state": "running", "spec": spec, "iterations": [],
                                     "runner": {"host": socket.gethostname(), "pid": other.pid}})
        summary = run_nightly(stores)
        assert summary["campaigns_resumed"] == []
        with pytest.raises(ConfigError, match=f"already running here \\(pid {other.pid}\\); wait for it to finish"):
            run_campaign(stores, CampaignSpec(**spec))
    finally:
        other.kill()
        other.wait()



def test_a_runner_on_another_host_counts_as_gone_only_after_silence(stores):
    from datetime import UTC, datetime, timedelta

    from mlipflow.campaign.runner import runner_gone

    now = datetime.now(UTC)
    doc = {"_id": "x", "state": "running", "runner": {"host": "another-node", "pid": 1, "since": now.isoformat()}}
    assert not runner_gone(stores, doc, expiration_secs=3600)
    doc["runner"]["since"] = (now - timedelta(hours=5)).isoformat()
    assert runner_gone(stores, doc, expiration_secs=3600)
