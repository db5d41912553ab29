"""FireWorks and jobflow on the embedded store, with several worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import numpy as np
from fireworks import Firework, ScriptTask, Workflow
from jobflow import Flow, job

from mlipflow.execution import run_worker, set_resource, submit


def _worker_cmd(category: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "mlipflow.cli", "worker", "--sleep", "1"]
    return [*cmd, "--category", category] if category else cmd


def test_three_workers_run_each_of_200_fireworks_once(stores, tmp_path):
    log = tmp_path / "ran.log"
    fws = [Firework(ScriptTask.from_str(f"echo {i} >> {log}"), name=f"fw{i}", fw_id=-i - 1) for i in range(200)]
    stores.launchpad.add_wf(Workflow(fws, name="many"))
    env = dict(os.environ)
    workers = [subprocess.Popen(_worker_cmd(), env=env, cwd=tmp_path) for _ in range(3)]
    assert [w.wait(timeout=600) for w in workers] == [0, 0, 0]

    ran = Counter(int(line) for line in log.read_text().split())
    assert sorted(ran) == list(range(200))
    assert set(ran.values()) == {1}, f"ran more than once: {[k for k, v in ran.items() if v > 1]}"
    lp = stores.launchpad
    assert lp.get_fw_ids({"state": "COMPLETED"}, count_only=True) == 200
    per_fw = Counter(d["fw_id"] for d in lp.launches.find({}, {"fw_id": 1}))
    assert len(per_fw) == 200 and set(per_fw.values()) == {1}


@job(data="trajectory")
def _big_output(n: int) -> dict:
    rng = np.random.default_rng(0)
    return {"trajectory": rng.random(n).tolist(), "n": n}


@job
def _count(doc: dict) -> int:
    return doc["n"]


def test_jobflow_through_fireworks_with_categories_and_large_data(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    big = _big_output(2_500_000)  # 20 MB of floats as BSON: must go to GridFS, not a document
    set_resource(big, "gpu")
    count = _count(big.output)
    mapping = submit(Flow([big, count], name="two-queues"), stores)
    lp = stores.launchpad
    assert lp.get_fw_by_id(mapping[big.uuid]).spec["_category"] == "gpu"
    assert "_category" not in lp.get_fw_by_id(mapping[count.uuid]).spec  # no resource stated: cpu workers

    run_worker(category="cpu", max_loops=1, sleep_time=1)  # nothing runnable for cpu yet
    assert lp.get_fw_by_id(mapping[count.uuid]).state == "WAITING"
    run_worker(category="gpu")
    run_worker(category="cpu")
    assert lp.get_fw_by_id(mapping[count.uuid]).state == "COMPLETED"

    store = stores.jobstore
    assert store.get_output(count.uuid) == 2_500_000
    raw = store.docs_store.query_one({"uuid": big.uuid})
    assert "blob_uuid" in str(raw["output"]["trajectory"])  # a reference, the data is elsewhere
    assert len(store.get_output(big.uuid, load=True)["trajectory"]) == 2_500_000
