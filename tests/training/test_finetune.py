"""Fine-tuning a small "foundation" model (trained here on Li + Li2O) on a new chemistry (rock-salt LiO).

Replay (mace-torch multi-head fine-tuning with the foundation's training frames as replay) keeps the force
error on the foundation hold-out within 1.5x; plain fine-tuning degrades it more.  About 4-5 minutes on a
busy 2-core CPU: marked slow.
"""

from __future__ import annotations

import pytest

from mlipflow.data import Dataset
from mlipflow.errors import TrainingError
from mlipflow.training.finetune import finetune_model
from mlipflow.training.synthetic import make_toy_frames
from mlipflow.training.trainer import train_model


def _version(stores, frames, name, fractions):
    dataset = Dataset(stores)
    dataset.add_frames(frames)
    return dataset.create_version(name, frame_ids=[f.content_hash for f in frames], fractions=fractions).id


def test_finetune_needs_a_local_foundation(stores, tiny, make_version):
    version = make_version(stores, n=10)
    with pytest.raises(TrainingError, match="nothing is downloaded"):
        finetune_model(stores, version, "medium", mode="plain", hyperparams=tiny)
    with pytest.raises(TrainingError, match="replay"):
        finetune_model(stores, version, __file__, mode="replay", hyperparams=tiny)


@pytest.mark.slow
def test_replay_finetuning_forgets_less_than_plain(stores, tiny):
    foundation_frames = make_toy_frames(30, "Li", seed=2) + make_toy_frames(30, "Li2O", seed=3)
    foundation_version = _version(stores, foundation_frames, "foundation",
                                  {"train": 0.7, "valid": 0.15, "test": 0.15})
    task_version = _version(stores, make_toy_frames(40, "LiO", seed=4), "task", {"train": 0.75, "valid": 0.25})
    foundation = train_model(stores, foundation_version, tiny.with_updates(max_num_epochs=15), name="foundation")
    hp = tiny.with_updates(max_num_epochs=8)
    common = dict(hyperparams=hp, replay_version=foundation_version, holdout_version=foundation_version)
    plain = finetune_model(stores, task_version, foundation.id, mode="plain", **common)
    replay = finetune_model(stores, task_version, foundation.id, mode="replay", **common)
    f_plain, f_replay = plain.extra["forgetting"], replay.extra["forgetting"]
    assert replay.heads == ["pt_head", "Default"] and plain.heads == ["Default"]
    assert f_replay["ratio_f"] <= 1.5, f_replay
    assert f_plain["ratio_f"] > f_replay["ratio_f"], (f_plain["ratio_f"], f_replay["ratio_f"])
    # both learned the new chemistry
    for record in (plain, replay):
        assert record.errors["valid"]["all"]["rmse_f"] < f_plain["before"]["all"]["rmse_f"]
