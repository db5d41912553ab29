"""Training a tiny MACE with mace-torch on toy-labeled frames: learning, registry, resume, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlipflow.data import Dataset
from mlipflow.errors import DataError, TrainingError
from mlipflow.training.cli import models_app
from mlipflow.training.registry import ModelRegistry, sha256_file
from mlipflow.training.synthetic import TOY_E0S, make_toy_frames
from mlipflow.training.trainer import resolve_e0s, train_model


def test_tiny_mace_lowers_validation_force_rmse_3x(trained, tiny):
    stores, version, record = trained
    points = [p for p in record.curves["points"] if p["head"] == "Default" and p["epoch"] >= 0]
    assert [p["epoch"] for p in points] == list(range(tiny.max_num_epochs))
    first, best = points[0]["rmse_f"], min(p["rmse_f"] for p in points)
    assert first / best >= 3.0, f"valid force RMSE only went from {first:.3f} to {best:.3f} eV/Å"
    # the registry record says what made the model and how good it is
    assert record.kind == "mace" and record.dataset_version == version
    assert record.e0s == {"Li": TOY_E0S["Li"], "O": TOY_E0S["O"]} and record.e0s_source == "labeler"
    assert record.hyperparams["num_channels"] == 16 and record.device == "cpu" and record.wall_time > 0
    assert set(record.errors) == {"train", "valid", "test"} and "Li2O" in record.errors["valid"]
    assert record.errors["valid"]["all"]["rmse_f"] < first
    assert record.checksum == sha256_file(ModelRegistry(stores).model_file(record.id))
    assert Path(record.extra["curves_png"]).read_bytes()[:4] == b"\x89PNG"


def test_rerun_returns_the_registered_model_without_training(trained, tiny):
    stores, version, record = trained
    again = train_model(stores, version, tiny, name="tiny", timeout=5)
    assert again.id == record.id
    assert len(ModelRegistry(stores).list(kind="mace", dataset_version=version)) >= 1


def test_registry_export_and_cli(trained, tmp_path, monkeypatch):
    stores, _, record = trained
    files = ModelRegistry(stores).export(record.id, tmp_path / "export")
    assert files[0].name == f"{record.id}.model" and sha256_file(files[0]) == record.checksum
    assert any(f.name.endswith("_compiled.model") for f in files)
    monkeypatch.setenv("MLIPFLOW_HOME", str(stores.settings.home))
    runner = CliRunner()
    out = runner.invoke(models_app, ["list", "--json"])
    assert out.exit_code == 0, out.output
    assert record.id in [row["id"] for row in json.loads(out.output)]
    out = runner.invoke(models_app, ["show", record.id[:10]])
    assert out.exit_code == 0 and json.loads(out.output)["checksum"] == record.checksum
    out = runner.invoke(models_app, ["export", record.id, str(tmp_path / "cli")])
    assert out.exit_code == 0 and (tmp_path / "cli" / f"{record.id}.model").is_file()


def test_dataset_with_a_nan_force_is_refused_before_training(stores, tiny):
    frames = make_toy_frames(12, "Li2O", seed=9)
    bad = frames[5].model_copy(update={"forces": [[float("nan"), 0.0, 0.0], *frames[5].forces[1:]]})
    frames[5] = bad
    Dataset(stores).add_frames(frames)
    version = Dataset(stores).create_version("bad", frame_ids=[f.content_hash for f in frames],
                                             fractions={"train": 0.5, "valid": 0.5})
    with pytest.raises(DataError, match=rf"{bad.content_hash}.*NaN"):
        train_model(stores, version.id, tiny, name="bad")
    assert not list((stores.settings.home / "training").glob("*/mace_stdout.log"))
    assert ModelRegistry(stores).list() == []


def test_e0s_from_labeler_else_least_squares():
    frames = make_toy_frames(6, "Li2O", seed=2) + make_toy_frames(6, "LiO", seed=2)
    e0s, source = resolve_e0s(frames, frames[0].labeler)
    assert source == "labeler" and e0s == {"Li": TOY_E0S["Li"], "O": TOY_E0S["O"]}
    unknown = frames[0].labeler.model_copy(update={"settings": {}})
    e0s, source = resolve_e0s(frames, unknown)
    assert source == "least-squares" and set(e0s) == {"Li", "O"}
    counts = np.array([[f.structure.composition["Li"], f.structure.composition["O"]] for f in frames])
    residual = counts @ np.array([e0s["Li"], e0s["O"]]) - np.array([f.energy for f in frames])
    assert np.abs(residual).max() / counts.sum(axis=1).min() < 1.0  # eV/atom: a sane fit
    isolated = {"Li": -0.5, "O": -2.0}  # the labeler's own isolated-atom labels come before a fit
    assert resolve_e0s(frames, unknown, isolated=isolated) == (isolated, "isolated-atom labels")
    assert resolve_e0s(frames, unknown, isolated={"Li": -0.5})[1] == "least-squares"  # O missing


class _KilledError(Exception):
    pass


def test_killed_training_restarts_and_ends_in_the_model_of_an_uninterrupted_run(stores, tiny, make_version):
    """A training killed after two of four epochs (stage two included, EMA on) starts again from epoch 0 and
    ends in exactly the weights of a run never killed: a mace checkpoint cannot continue it exactly."""
    import torch

    version = make_version(stores, n=30, seed=3, fractions={"train": 0.7, "valid": 0.3})
    hp = tiny.with_updates(max_num_epochs=4, seed=11)

    def kill_after_two_epochs(point):
        if point.epoch >= 1:  # epochs 0 and 1 are done: the job dies here (mace child SIGKILLed)
            raise _KilledError

    with pytest.raises(_KilledError):
        train_model(stores, version, hp, name="resume", on_epoch=kill_after_two_epochs)
    assert ModelRegistry(stores).list() == []
    record = train_model(stores, version, hp, name="resume")
    epochs = [p["epoch"] for p in record.curves["points"] if p["epoch"] >= 0]
    assert epochs == [0, 1, 2, 3]  # each epoch once: the killed attempt's curve was discarded with it
    run_dir = next((stores.settings.home / "training").glob("resume-*"))
    assert json.loads((run_dir / "mlipflow_status.json").read_text())["discarded_attempts"] == 1
    never_killed = train_model(stores, version, hp, name="whole")
    assert never_killed.errors == record.errors
    registry = ModelRegistry(stores)
    weights = [torch.load(registry.model_file(r.id), map_location="cpu", weights_only=False).state_dict()
               for r in (record, never_killed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # killed after it finished but before it was registered: the finished run is used, nothing trains again
    (run_dir / "mace_stdout.log").write_text("")
    registry.collection.delete_one({"_id": record.id})
    again = train_model(stores, version, hp, name="resume")
    assert again.checksum == record.checksum and (run_dir / "mace_stdout.log").read_text() == ""


def test_diverging_loss_stops_with_a_reason_and_registers_nothing(stores, tiny, make_version):
    version = make_version(stores, n=30, seed=4, fractions={"train": 0.7, "valid": 0.3})
    hp = tiny.with_updates(max_num_epochs=6, lr=50.0, clip_grad=None, seed=5)
    with pytest.raises(TrainingError, match=r"NaN|diverged") as info:
        train_model(stores, version, hp, name="diverge", divergence_factor=20.0)
    assert "Nothing was registered" in str(info.value)
    assert ModelRegistry(stores).list() == []
    assert Dataset(stores).get_version(version).counts["train"] > 0  # the dataset is untouched


def test_the_registered_epoch_is_the_best_one_and_warm_start_continues_from_it(trained, tiny):
    """mace-torch keeps the last epoch when every checkpoint is saved; the registry keeps the best-validation one
    of the final stage (stage two) and says which, and a warm start from it begins where it ended."""
    from mlipflow.training.curves import TrainingCurves
    from mlipflow.training.mace_runner import best_epoch
    from mlipflow.training.trainer import evaluate_errors, load_calculator

    stores, version, record = trained
    curves = TrainingCurves(**record.curves)
    start = tiny.stage_two_start
    expected = best_epoch(curves, start)
    assert record.kept_epoch == expected and "stage two" in record.kept_rule
    stage_two = [p for p in curves.for_head() if p.epoch >= start]
    assert min(stage_two, key=lambda p: p.valid_loss).epoch == record.kept_epoch
    # the registered file holds that epoch's weights: its validation force RMSE is the curve's at that epoch
    calc = load_calculator(ModelRegistry(stores).model_file(record.id), default_dtype=tiny.default_dtype)
    frames = [f for f, _ in Dataset(stores).version_frames(version, "valid")]
    kept = next(p for p in stage_two if p.epoch == record.kept_epoch)
    assert abs(evaluate_errors(calc, frames)["all"]["rmse_f"] - kept.rmse_f) < 0.02 * kept.rmse_f + 1e-4
    # warm start: a few epochs from the registered model, recorded as such, beginning at its accuracy
    warm = train_model(stores, version, tiny.with_updates(max_num_epochs=2), name="tiny-warm", init_from=record.id)
    assert warm.warm_start == record.id
    initial = next(p for p in TrainingCurves(**warm.curves).points if p.epoch == -1)
    scratch_initial = next(p for p in curves.points if p.epoch == -1)
    assert initial.rmse_f < 0.5 * scratch_initial.rmse_f  # it starts trained, not from random weights
