"""The live view: one plain line per finished step off a terminal, a live panel on one, counts from the records."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from mlipflow.campaign.progress import (
    ProgressView,
    Step,
    label_progress,
    md_progress,
    short_job_name,
    summarize_output,
    training_progress,
)
from mlipflow.execution import run_here

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("DEMO_LOG", str(tmp_path / "ran.log"))
    monkeypatch.setenv("DEMO_GO", str(tmp_path / "go"))
    import demo_flow

    return demo_flow


def test_job_names_and_summaries():
    assert short_job_name("label batch 3", 0, "label") == "batch 3"
    assert short_job_name("decide iteration 2", 2, "decide") == ""
    assert short_job_name("picked_structures_job", 1, "pick") == "picked_structures_job"
    assert summarize_output("label", {"counts": {"labeled": 7, "reused": 1, "failed": 0}, "frame_ids": []}) == \
        "7 labeled, 1 reused"
    decision = {"iteration": 1, "decision": {"decision": "continue", "reason": "gb: accurate ratio 0.5 < 0.9"}}
    assert summarize_output("decide", decision) == "decision continue: gb: accurate ratio 0.5 < 0.9"
    model = {"model_id": "m-1", "errors": {"valid": {"rmse_f": 0.1234, "rmse_e_per_atom": 0.0021}}}
    assert summarize_output("train", model) == "model m-1, valid RMSE F 123 meV/Å, E 2.1 meV/atom"
    walkers = {"walkers": [{"n_steps": 16, "stop_reason": "completed", "max_force_spread": 0.2}] * 2}
    assert summarize_output("explore", walkers) == \
        "2 walkers, 32 MD steps, stop: 2 completed, max force spread 0.200 eV/Å"
    assert summarize_output("x", None) == "" and summarize_output("x", {"unknown": 1}) == ""


def test_plain_output_is_one_line_per_finished_step_naming_iteration_and_stage(stores, demo, tmp_path):
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False)
    with ProgressView(stores, console, campaign="demo") as view:
        run_here(demo.make("demo"), stores, campaign="demo", spec={}, root_dir=tmp_path / "launches")
    assert not view.live_mode
    lines = out.getvalue().splitlines()
    # 9 fireworks ran; the planning job and jobflow's store_inputs did no work of their own
    assert len(lines) == 7 == view.finished_steps
    assert all(" · iteration " in line and line.startswith("[0:00:") for line in lines)
    stages = [line.split(" · ")[2].split(":")[0] for line in lines]
    assert sorted(stages) == ["decide", "label", "label", "label", "pick", "structures", "train"]
    decision = next(line for line in lines if "decide" in line)
    assert "demo · iteration 1 · decide · decision continue: demo" in decision
    assert "\x1b[" not in out.getvalue()  # no terminal control codes in a pipe


def test_live_panel_on_a_terminal(stores, demo, tmp_path):
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system=None)
    with ProgressView(stores, console, campaign="demo", refresh=0.05) as view:
        run_here(demo.make("demo"), stores, campaign="demo", spec={}, root_dir=tmp_path / "launches")
        time.sleep(0.3)  # a few refreshes of the panel
    assert view.live_mode and view.finished_steps == 7
    text = out.getvalue()
    assert "elapsed" in text and "steps" in text  # the panel was drawn
    assert "iteration 1 decision continue: demo" in text  # the decision, in the panel as it was made


def test_counts_come_from_the_ledger_the_trajectories_and_the_training_files(stores, tmp_path):
    started = time.time() - 1
    step = Step(uuid="u", index=1, name="label batch 0", started=started, campaign="toy", iteration=1,
                stage="label", totals={"structures": 8})
    now = datetime.now(UTC)
    stores.frames.insert_many([
        {"_id": f"f{i}", "status": s, "updated_at": now, "provenance": {"campaign": "toy", "iteration": 1}}
        for i, s in enumerate(["labeled", "labeled", "filtered", "running", "pending"])])
    stores.frames.insert_one({"_id": "old", "status": "labeled", "updated_at": datetime(2020, 1, 1, tzinfo=UTC),
                              "provenance": {"campaign": "toy", "iteration": 1}})
    assert label_progress(stores, step) == "labels 3/8 of this batch"

    from mlipflow.sampling.trajectory import TRAJECTORIES

    md = Step(uuid="v", index=1, name="explore iteration 1", started=started, stage="explore",
              totals={"structures": 1, "temperatures": 2, "n_steps": 16, "record_every": 4})
    stores.collection(TRAJECTORIES).insert_many([
        {"_id": "t1", "n_frames": 5, "complete": True, "created_at": now},
        {"_id": "t2", "n_frames": 1, "complete": False, "created_at": now}])
    assert md_progress(stores, md) == "walkers 1/2 done, MD steps ~16/32 recorded"

    run = stores.settings.home / "training" / "toy-mace-abc"
    (run / "results").mkdir(parents=True)
    (run / "mace_args.json").write_text(json.dumps({"max_num_epochs": 3}))
    records = [{"mode": "eval", "epoch": None, "rmse_f": 1.2, "rmse_e_per_atom": 0.6},
               {"mode": "opt", "epoch": 0, "loss": 3.0},
               {"mode": "eval", "epoch": 0, "rmse_f": 1.15, "rmse_e_per_atom": 0.71},
               {"mode": "eval", "epoch": 1, "rmse_f": 1.083, "rmse_e_per_atom": 0.759}]
    (run / "results" / "toy-mace_run-0_train.txt").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    train = Step(uuid="w", index=1, name="mace train 1/2", started=started, stage="train")
    assert training_progress(stores.settings.home, train) == "epoch 2/3, valid RMSE F 1083 meV/Å, E 759.0 meV/atom"
