"""The campaign file and the active-learning loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mlipflow.campaign.convergence import ConvergenceCriteria, decide
from mlipflow.campaign.loop import campaign_from_spec
from mlipflow.campaign.spec import CampaignSpec, load_campaign
from mlipflow.campaign.status import campaign_status, next_stage
from mlipflow.errors import ConfigError

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "flows" / "campaign_toy.yaml").read_text())
#: labels of iteration 0 in the toy campaign: 17 Li2O cells and the isolated Li and O atoms (E0s)
FIRST = 17 + 2
#: labels of the toy's benchmark stage: the final model's MD at 2 temperatures, 4 frames each (the test set)
TEST = 8


def test_typo_in_campaign_file_names_key_and_line(tmp_path):
    text = yaml.safe_dump(SPEC, sort_keys=False).replace("batch_size:", "batch_sise:")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    line = 1 + text.splitlines().index(next(ln for ln in text.splitlines() if "batch_sise" in ln))
    with pytest.raises(ConfigError, match=rf"c.yaml:{line}: labeler.batch_sise: unknown key"):
        load_campaign(path)


def test_shipped_campaign_file_is_valid():
    spec = load_campaign("flows/campaign_li2o.yaml")
    assert spec.labeler.kind == "surrogate" and spec.convergence.max_iterations >= 3
    temperatures = spec.sampling.temperatures
    assert min(temperatures) <= 300 and max(temperatures) >= 800  # the sampling range


def test_sampling_schedule_changes_md_from_an_iteration_on(tmp_path):
    stages = [{"from_iteration": 2, "temperatures": [900.0], "n_steps": 40}, {"from_iteration": 3, "ensemble": "nve"}]
    maker = campaign_from_spec(CampaignSpec(**{**SPEC, "sampling": {**SPEC["sampling"], "schedule": stages}}))
    one, two, three = (maker.explorer_for(k) for k in (1, 2, 3))
    assert one.temperatures == [300.0, 1200.0] and one.settings.n_steps == 16
    assert two.temperatures == [900.0] and two.settings.n_steps == 40 and two.settings.ensemble == "nvt_langevin"
    assert three.temperatures == [900.0] and three.settings.ensemble == "nve" and three.settings.n_steps == 40
    md = maker.exploration(2, {"model_id": "m"}, {"version": "v"}, [], []).jobs[0]  # the MD job iteration 2 runs
    assert md.function_args[2] == [900.0] and md.function_args[3].n_steps == 40
    text = yaml.safe_dump({**SPEC, "sampling": {**SPEC["sampling"], "schedule": [{"from_iteraton": 2}]}})
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match="from_iteraton: unknown key"):
        load_campaign(tmp_path / "c.yaml")


def _hot(ratio_900: float, n: int = 20) -> dict:
    return {"gb": {"300 K": {"accurate_ratio": 0.99, "n": n}, "900 K": {"accurate_ratio": ratio_900, "n": n}}}


def test_decisions():
    crit = ConvergenceCriteria(accurate_ratio=0.9, max_iterations=3, label_budget=50, min_frames=10)
    good = {"gb": {"accurate_ratio": 0.95, "n": 40}, "all": {"accurate_ratio": 0.95, "n": 40}}
    bad = {"gb": {"accurate_ratio": 0.5, "n": 40}, "bulk": {"accurate_ratio": 0.99, "n": 40}}
    assert decide(crit, iteration=1, trust_report=good, labels_so_far=10).decision == "converged"
    assert decide(crit, iteration=1, trust_report=bad, labels_so_far=10).decision == "continue"
    assert "gb: accurate ratio 0.500" in decide(crit, iteration=1, trust_report=bad, labels_so_far=10).reason
    assert decide(crit, iteration=3, trust_report=bad, labels_so_far=10).decision == "max_iterations"
    assert decide(crit, iteration=1, trust_report=bad, labels_so_far=60).decision == "label_budget"
    at_900 = decide(crit, iteration=1, trust_report=good, labels_so_far=10, trust_by_temperature=_hot(0.7))
    assert at_900.decision == "continue" and "gb at 900 K: accurate ratio 0.700" in at_900.reason


def test_rmse_targets_met_and_unmet():
    crit = ConvergenceCriteria(accurate_ratio=0.9, force_rmse=0.06, energy_rmse=0.003, min_frames=1)
    good = {"gb": {"accurate_ratio": 0.95, "n": 40}}
    met = decide(crit, iteration=1, trust_report=good, labels_so_far=1,
                 errors={"rmse_f": 0.05, "rmse_e_per_atom": 0.002, "split": "test"})
    assert met.decision == "converged" and "errors within targets (test split" in met.reason
    unmet = decide(crit, iteration=1, trust_report=good, labels_so_far=1,
                   errors={"rmse_f": 0.08, "rmse_e_per_atom": 0.002, "split": "test"})
    assert unmet.decision == "continue" and "force RMSE 0.08 eV/Å > target 0.06 (test split)" in unmet.reason
    unknown = decide(crit, iteration=1, trust_report=good, labels_so_far=1, errors={})
    assert unknown.decision == "continue" and "force RMSE n/a" in unknown.reason


def test_a_stopped_walker_or_too_few_frames_block_convergence():
    crit = ConvergenceCriteria(accurate_ratio=0.9, min_frames=10)
    good = {"gb": {"accurate_ratio": 0.95, "n": 40}}
    walkers = [{"family": "gb", "temperature_label": "300 K", "stop_reason": "completed"},
               {"family": "gb", "temperature_label": "900 K", "stop_reason": "monitor:min_distance"}]
    blocked = decide(crit, iteration=1, trust_report=good, labels_so_far=1, trust_by_temperature=_hot(0.99),
                     walkers=walkers)
    assert blocked.decision == "continue"
    assert blocked.blocked == {"gb at 900 K": "1 of 1 walkers stopped early (monitor:min_distance)"}
    assert "gb at 900 K: 1 of 1 walkers stopped early" in blocked.reason
    few = decide(crit, iteration=1, trust_report=good, labels_so_far=1, trust_by_temperature=_hot(0.99, n=4))
    assert few.decision == "continue" and "4 explored frames < min_frames 10" in few.reason
    walkers[1]["stop_reason"] = "completed"
    assert decide(crit, iteration=1, trust_report=good, labels_so_far=1, trust_by_temperature=_hot(0.99),
                  walkers=walkers).decision == "converged"


def test_next_stage_follows_the_loop():
    assert next_stage(0, "label") == (0, "reference_md")
    assert next_stage(0, "reference_md") == (0, "dataset")
    assert next_stage(0, "train") == (1, "explore")
    assert next_stage(1, "decide") == (1, "pick")
    assert next_stage(1, "label") == (1, "assess")
    assert next_stage(2, "train") == (3, "explore")


def test_two_iteration_campaign_runs_and_stops_for_a_stated_reason(stores, tmp_path):
    from mlipflow.campaign.runner import run_campaign
    from mlipflow.replay import FINISHED_STEPS
    from mlipflow.sampling.trajectory import TRAJECTORIES

    doc = run_campaign(stores, CampaignSpec(**SPEC), root_dir=tmp_path)
    assert "runner" not in doc  # the run is over
    assert doc["state"] == "max_iterations"
    assert [it["iteration"] for it in doc["iterations"]] == [1, 2]
    first, second = doc["iterations"]
    assert first["decision"]["decision"] == "continue" and first["picked"] == 3
    assert second["committee"] != first["committee"]  # iteration 2 explored with the retrained committee
    assert second["dataset"] != first["dataset"]
    picked = stores.frames.count_documents({"provenance.campaign": "toy", "provenance.iteration": 1})
    assert picked == 3
    version = stores.datasets.find_one({"_id": first["dataset"]})
    assert set(version["isolated_atoms"]) == {"Li", "O"}  # not training frames: the E0s
    trained = stores.models.find_one({"dataset_version": first["dataset"]})
    assert trained["e0s_source"] == "isolated-atom labels"

    status = campaign_status(stores, "toy")
    # iteration 0's cells and atoms, iteration 1's picks, the benchmark's test set
    assert status["labels"] == {"labeled": FIRST + 3 + TEST}
    assert (status["iteration"], status["stage"]) == (2, "benchmark")  # the stage that ran when it stopped
    assert status["next"].startswith("nothing: the campaign stopped (max_iterations)")
    assert set(status["by_family"]) == {"rattled"}
    assert set(status["by_temperature"]["rattled"]) == {"300 K", "1200 K"}  # every sampled temperature
    assert second["decision"]["errors"]["split"] == "valid"  # the toy dataset has no test split
    assert first["committee_errors"]["valid"]["rmse_f"] > 0 and first["committee_spread"]["p50"] >= 0
    assert first["assessment"]["summary"]["n_assessed"] == 3  # every pick: predicted spread against true error
    bench = doc["benchmark"]  # the benchmark stage ran when the campaign stopped
    assert bench["trajectory_errors"]["rmse_f_meV_A"] > 0 and bench["verdict"]["checks"]
    assert [m["iteration"] for m in bench["learning_curve"] if m["kind"] == "member"] == [0, 1]

    # running it again is resuming it: no label, no training, no MD is repeated
    n_models, n_traj = stores.models.count_documents({}), stores.collection(TRAJECTORIES).count_documents({})
    steps = stores.collection(FINISHED_STEPS)
    assert [steps.count_documents({"kind": k}) for k in ("committee_md", "select")] == [2, 2]
    again = run_campaign(stores, CampaignSpec(**SPEC), root_dir=tmp_path)
    assert again["iterations"] == doc["iterations"]  # the same decisions, figures and picks
    assert stores.models.count_documents({}) == n_models
    assert stores.collection(TRAJECTORIES).count_documents({}) == n_traj
    assert max(d.get("attempts", 0) for d in stores.frames.find({}, {"attempts": 1})) == 1
    _every_output_is_its_declared_document(stores, "toy")


def _every_output_is_its_declared_document(stores, campaign: str) -> None:
    """Walk the JobStore of a finished campaign: each job's output validates as its job's ``output_schema``.

    The schema comes from the job as it was queued (its firework); jobs that only plan (they replace themselves
    by a flow, output None) and jobflow's own ``store_inputs`` are the only ones without a document.
    """
    import importlib

    from monty.json import MontyDecoder
    from pydantic import BaseModel

    schemas = {}
    for fw in stores.launchpad.fireworks.find({"spec.campaign": campaign}, {"spec._tasks.job": 1}):
        job = fw["spec"]["_tasks"][0]["job"]
        schema = job.get("output_schema")
        schemas[job["uuid"]] = (job["name"], job["metadata"],
                                getattr(importlib.import_module(schema["@module"]), schema["@callable"])
                                if schema else None)
    checked = set()
    for doc in stores.jobstore.query({"uuid": {"$in": list(schemas)}}, properties=["uuid", "output"]):
        name, metadata, schema = schemas[doc["uuid"]]
        if name == "store_inputs" or metadata.get("plans"):
            continue
        assert schema is not None and issubclass(schema, BaseModel), f"job {name!r} declares no document type"
        output = MontyDecoder().process_decoded(doc["output"])
        assert isinstance(output, schema), (name, type(output))
        schema.model_validate(output.model_dump())  # and it validates field by field
        checked.add(schema.__name__)
    assert {"StructureSetDoc", "LabelSummary", "DatasetVersionDoc", "ModelDoc", "SamplingSummary", "SelectionResult",
            "IterationRecord", "BenchmarkDoc"} <= checked, checked


def test_campaign_through_fireworks_with_cpu_and_gpu_workers(stores, tmp_path, monkeypatch):
    from mlipflow.execution import run_worker, submit

    monkeypatch.chdir(tmp_path)
    spec = CampaignSpec(**{**SPEC, "name": "toy-fw"})
    submit(campaign_from_spec(spec).make(), stores)
    lp = stores.launchpad
    categories = {fw["spec"].get("_category") for fw in lp.fireworks.find({}, {"spec._category": 1})}
    assert categories == {None, "gpu"}  # training and MD wait for gpu workers
    for _ in range(30):
        run_worker(category="cpu", sleep_time=1)
        run_worker(category="gpu", sleep_time=1)
        if not lp.fireworks.count_documents({"state": {"$in": ["READY", "WAITING", "RESERVED", "RUNNING"]}}):
            break
    assert lp.fireworks.count_documents({"state": "FIZZLED"}) == 0
    doc = stores.campaigns.find_one({"_id": "toy-fw"})
    assert doc["state"] == "max_iterations" and len(doc["iterations"]) == 2
    status = campaign_status(stores, "toy-fw")
    assert status["jobs"] == {"COMPLETED": lp.fireworks.count_documents({})}  # every firework is the campaign's
    assert status["labels"] == {"labeled": FIRST + 3 + TEST}
    gpu_names = {fw["name"] for fw in lp.fireworks.find({"spec._category": "gpu"}, {"name": 1})}
    assert any("train" in n for n in gpu_names) and any("explore" in n for n in gpu_names)


COUNTING_CALCULATOR = """
import hashlib, os, time
import numpy as np
from mlipflow.training.synthetic import ToyMorseCalculator

class Counting(ToyMorseCalculator):
    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        super().calculate(atoms, properties, system_changes or [])
        a = self.atoms  # the structure's identity: species, cell and fractional coordinates
        data = [a.numbers.tobytes(), np.round(a.cell.array, 4).tobytes(),
                np.round(a.get_scaled_positions(), 5).tobytes()]
        key = hashlib.sha1(b"".join(data)).hexdigest()
        with open(os.environ["COUNT_LOG"], "a") as fh:
            fh.write(f"{os.getpid()} {key}\\n")
        time.sleep(float(os.environ.get("COUNT_SLEEP", "0")))

def make(**kwargs):
    return Counting(**kwargs)
"""


def _kill_then_resume(stores, tmp_path, name: str, killed_when, sleep: float = 0.0):
    """Run the toy campaign ``name`` with ``mlipflow run`` (the surrogate logs every call), SIGKILL it as soon
    as ``killed_when(calls_so_far)`` holds, check what status says, then ``mlipflow resume`` it.

    Returns the surrogate calls (structure keys) before the kill, the labels stored at the kill, and all calls.
    """
    (tmp_path / "countcalc.py").write_text(COUNTING_CALCULATOR)
    log = tmp_path / "calls.log"
    spec = {**SPEC, "name": name, "labeler": {**SPEC["labeler"], "calculator": "countcalc:make"}}
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(tmp_path), COUNT_LOG=str(log),
               COUNT_SLEEP=str(sleep), COLUMNS="250")
    proc = subprocess.Popen([sys.executable, "-m", "mlipflow", "run", str(path)], cwd=tmp_path, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(3000):
        calls = log.read_text().splitlines() if log.exists() else []
        if killed_when(calls):
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    first = [line.split()[1] for line in log.read_text().splitlines()]
    labeled_at_kill = stores.frames.count_documents({"status": "labeled"})
    status = campaign_status(stores, name)
    assert status["state"] == "running" and status["next"].startswith("interrupted")
    shown = subprocess.run([sys.executable, "-m", "mlipflow", "status", name], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120).stdout
    assert f"labels: labeled {labeled_at_kill}," in shown and f"next: interrupted; `mlipflow resume {name}`" in shown

    done = subprocess.run([sys.executable, "-m", "mlipflow", "resume", name], cwd=tmp_path,
                          env={**env, "COUNT_SLEEP": "0"}, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = stores.campaigns.find_one({"_id": name})
    assert doc["state"] == "max_iterations" and [it["iteration"] for it in doc["iterations"]] == [1, 2]
    # as many as an uninterrupted run
    assert stores.frames.count_documents({"status": "labeled"}) == FIRST + 3 + TEST
    assert max(d.get("attempts", 0) for d in stores.frames.find({}, {"attempts": 1})) == 1
    calls = [line.split()[1] for line in log.read_text().splitlines()]
    assert not set(calls[len(first):]) & set(first[:labeled_at_kill])  # no finished label computed again
    return first, labeled_at_kill, calls


def test_campaign_killed_during_labeling_resumes_with_no_repeated_label_call(stores, tmp_path):
    """SIGKILL after 6 of iteration 0's 19 labels (batches of 8); the resumed campaign ends where an
    uninterrupted one ends, and only the label cut short by the kill is computed a second time."""
    first, labeled_at_kill, calls = _kill_then_resume(stores, tmp_path, "toy-kill-label",
                                                      lambda calls: len(calls) >= 6, sleep=0.3)
    assert 5 <= labeled_at_kill <= len(first) < FIRST
    # one call per label, plus the one cut short
    assert len(calls) - (len(first) - labeled_at_kill) == FIRST + 3 + TEST
    status = campaign_status(stores, "toy-kill-label")
    assert status["labels"] == {"labeled": FIRST + 3 + TEST}


def test_campaign_killed_during_training_resumes_with_no_repeated_label_call(stores, tmp_path):
    """SIGKILL while iteration 0's committee trains; the resume computes only iteration 1's 3 new labels."""
    training = stores.settings.home / "training"

    def training_started(calls):
        return len(calls) >= FIRST and training.exists() and any(training.iterdir())

    first, labeled_at_kill, calls = _kill_then_resume(stores, tmp_path, "toy-kill-train", training_started)
    assert labeled_at_kill == len(first) == FIRST
    assert len(calls) == FIRST + 3 + TEST


def test_resources_decide_the_category_of_every_job(stores):
    """resources.training: cpu puts the committee's training on cpu workers; md stays on gpu, labels on cpu."""
    from mlipflow.execution import submit

    spec = CampaignSpec(**{**SPEC, "name": "toy-res", "resources": {"labeling": "cpu", "training": "cpu",
                                                                    "md": "gpu"}})
    submit(campaign_from_spec(spec).make(), stores)
    fws = list(stores.launchpad.fireworks.find({}, {"name": 1, "spec._category": 1}))
    category = {fw["name"]: fw["spec"].get("_category") for fw in fws}
    training = [n for n in category if "train" in n]
    assert training and all(category[n] == "cpu" for n in training), category
    assert all(category[n] == "gpu" for n in category if "explore" in n)
    assert not any(c == "gpu" for n, c in category.items() if "train" in n or "label" in n)
    from mlipflow.execution import waiting_elsewhere

    assert waiting_elsewhere(stores.launchpad, "cpu")["gpu"] >= 1 and waiting_elsewhere(stores.launchpad, None) == {}
    # a gpu worker finds nothing ready (the gpu jobs wait for labels and training) and says what it waits for
    shown = subprocess.run([sys.executable, "-m", "mlipflow", "worker", "--category", "gpu", "--sleep", "1"],
                           capture_output=True, text=True, timeout=300, env=dict(os.environ, COLUMNS="200"))
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "worker gpu: nothing left to run here; waiting for other workers:" in shown.stdout, shown.stdout
    assert "`mlipflow worker --category cpu`" in shown.stdout
