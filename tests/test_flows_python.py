"""The Python examples in flows/ run (tiny settings): submit a campaign, compose a custom flow, benchmark a model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"flows_{name}", ROOT / "flows" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_submit_campaign_queues_the_flagship_flow(stores):
    example = _example("submit_campaign")
    from mlipflow.errors import ConfigError

    with pytest.raises(ConfigError, match=r"trainer\.hyperparams\.max_num_epochs: Input should be greater"):
        example.build(ROOT / "flows" / "campaign_toy.yaml", epochs=0)  # the validated model refuses it, naming it
    ids = example.main([str(ROOT / "flows" / "campaign_toy.yaml"), "--epochs", "2"])
    fws = list(stores.launchpad.fireworks.find({"spec.campaign": "toy"}, {"name": 1, "state": 1}))
    assert len(fws) == len(ids) >= 8 and any(fw["state"] == "READY" for fw in fws)
    assert stores.launchpad.workflows.count_documents({}) == 1  # one workflow for the campaign


def test_custom_flow_then_benchmark_of_its_committee_from_the_registry(stores, capsys):
    from mlipflow.training.registry import ModelRegistry

    _example("custom_flow").main(["--labeler", "surrogate", "--tiny", "--epochs", "2"])
    committees = [r for r in ModelRegistry(stores).list() if r.kind == "committee"]
    assert len(committees) == 1 and len(committees[0].members) == 2
    labels = {d["labeler"]["name"] for d in stores.frames.find({}, {"labeler": 1})}
    assert labels == {"toy-morse"}  # the surrogate's name is on every label
    verdict = stores.jobstore.query_one({"name": "benchmark: verdict"}, properties=["output"])
    assert verdict["output"]["trajectory_errors"]["rmse_f_meV_A"] > 0  # the custom flow's own benchmark stage
    result = _example("benchmark_model").main([committees[0].id, "--campaign", str(ROOT / "flows" /
                                                                                "campaign_toy.yaml")])
    assert result["trajectory_errors"]["rmse_f_meV_A"] > 0
    assert "MLMD test set: force RMSE" in capsys.readouterr().out
