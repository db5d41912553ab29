"""The training Makers: jobs for gpu workers, a committee as parallel member jobs, a run through jobflow."""

from __future__ import annotations

import json

import pytest
from jobflow import Flow
from monty.json import MontyDecoder, MontyEncoder

from mlipflow.execution import RESOURCE_KEY, run_locally
from mlipflow.training.jobs import CommitteeTrainMaker, FineTuneMaker, MaceTrainMaker
from mlipflow.training.registry import ModelRegistry


def test_makers_build_gpu_jobs_and_a_parallel_committee_flow(tiny):
    job = MaceTrainMaker(hyperparams=tiny).make("toy-123", seed=3)
    assert job.metadata[RESOURCE_KEY] == "gpu"
    assert job.function_args[1]["seed"] == 3
    flow = CommitteeTrainMaker(trainer=MaceTrainMaker(hyperparams=tiny), n_models=3, bootstrap=True).make("toy-1")
    assert isinstance(flow, Flow) and len(flow.jobs) == 4
    members = flow.jobs[:3]
    assert [m.function_args[1]["seed"] for m in members] == [tiny.seed, tiny.seed + 1, tiny.seed + 2]
    assert [m.function_kwargs["bootstrap_seed"] for m in members] == [tiny.seed, tiny.seed + 1, tiny.seed + 2]
    # members depend on nothing but the dataset version: they can run in parallel
    assert all(not m.input_references for m in members)
    ft = FineTuneMaker(mode="replay", replay_version="found-1").make("task-1", "/models/foundation.model")
    assert ft.metadata[RESOURCE_KEY] == "gpu"
    # jobs serialise (FireWorks stores them as JSON)
    again = json.loads(json.dumps(flow.as_dict(), cls=MontyEncoder), cls=MontyDecoder)
    assert len(again.jobs) == 4


@pytest.mark.slow
def test_mace_train_maker_runs_through_jobflow(stores, tiny, make_version):
    version = make_version(stores, n=30, seed=6, fractions={"train": 0.7, "valid": 0.3})
    job = MaceTrainMaker(hyperparams=tiny.with_updates(max_num_epochs=3)).make(version)
    responses = run_locally(job, stores=stores)
    output = responses[job.uuid][1].output
    record = ModelRegistry(stores).get(output.model_id)
    assert record.dataset_version == version and output.errors["valid"]["rmse_f"] > 0
