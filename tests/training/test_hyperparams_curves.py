"""Fast tests: hyper-parameters -> mace-torch arguments, curve parsing and plotting, the toy potential."""

from __future__ import annotations

import math

import pytest
from ase.calculators.fd import calculate_numerical_stress

from mlipflow.training.curves import parse_results, plot_curves
from mlipflow.training.hyperparams import MaceHyperParams, options_to_args
from mlipflow.training.synthetic import ToyMorseCalculator, finite_difference_check, make_toy_atoms


def test_hyperparams_become_mace_arguments():
    hp = MaceHyperParams.tiny(swa=True, start_swa=8, ema=True, seed=3)
    args = options_to_args(hp.mace_options())
    assert "--num_channels=16" in args and "--max_L=0" in args and "--seed=3" in args
    assert "--swa" in args and "--start_swa=8" in args and "--ema" in args
    assert "--save_all_checkpoints" in args
    assert "--multiheads_finetuning=False" in options_to_args({"multiheads_finetuning": False})
    assert options_to_args({"swa": False}) == []
    assert "--pair_repulsion" not in args
    zbl = options_to_args(MaceHyperParams.tiny(pair_repulsion=True).mace_options())
    assert "--pair_repulsion" in zbl
    # mace-torch's own parser reads the arguments as we write them (the flag reaches its model builder)
    from mace.tools.arg_parser import build_default_arg_parser

    parsed = build_default_arg_parser().parse_args(["--name=x", "--train_file=x.xyz", *zbl])
    assert parsed.pair_repulsion is True and parsed.num_channels == 16
    assert build_default_arg_parser().parse_args(["--name=x", "--train_file=x.xyz", *args]).pair_repulsion is False


def test_hyperparams_refuse_reserved_and_bad_values():
    with pytest.raises(ValueError, match="train_file"):
        MaceHyperParams(extra_args={"train_file": "x.xyz"})
    with pytest.raises(ValueError):
        MaceHyperParams(r_max=-1.0)
    assert MaceHyperParams(seed=1).digest() != MaceHyperParams(seed=2).digest()


def _rec(mode, epoch, loss, **kw):
    return {"mode": mode, "epoch": epoch, "loss": loss, "head": "Default", **kw}


def test_curves_keep_newest_values_after_a_restart():
    records = [
        _rec("eval", None, 10.0, rmse_f=1.0, rmse_e_per_atom=0.1),
        _rec("opt", 0, 20.0), _rec("opt", 0, 18.0), _rec("eval", 0, 8.0, rmse_f=0.8, rmse_e_per_atom=0.08),
        _rec("opt", 1, 12.0), _rec("eval", 1, 6.0, rmse_f=0.6, rmse_e_per_atom=0.06),
        # killed, resumed from the checkpoint of epoch 1: epoch 1 trained again
        _rec("eval", None, 6.0, rmse_f=0.6, rmse_e_per_atom=0.06),
        _rec("opt", 1, 7.0), _rec("eval", 1, 5.0, rmse_f=0.5, rmse_e_per_atom=0.05),
        _rec("opt", 2, 4.0), _rec("eval", 2, 4.0, rmse_f=0.4, rmse_e_per_atom=0.04),
    ]
    curves = parse_results(records)
    assert curves.restarts == 1
    assert [p.epoch for p in curves.for_head()] == [0, 1, 2]
    assert curves.for_head()[1].rmse_f == 0.5 and curves.for_head()[1].train_loss == 7.0
    assert curves.for_head()[0].train_loss == 19.0
    assert not curves.has_nan()
    assert parse_results([*records, _rec("eval", 3, math.nan, rmse_f=math.nan)]).has_nan()


def test_plot_curves_writes_png(tmp_path):
    records = [_rec("eval", e, 10.0 / (e + 1), rmse_f=1.0 / (e + 1), rmse_e_per_atom=0.1) for e in range(5)]
    curves = parse_results(records)
    path = plot_curves(curves, tmp_path / "c.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_toy_potential_forces_and_stress_are_consistent():
    atoms = make_toy_atoms(3, "Li2O", seed=5)[2]
    calc = ToyMorseCalculator()
    assert finite_difference_check(atoms, calc, atoms_idx=(0, 4)) < 1e-5
    atoms.calc = calc
    assert abs(atoms.get_stress() - calculate_numerical_stress(atoms)).max() < 1e-5


def test_device_follows_the_worker(monkeypatch):
    """``auto`` becomes cuda when torch sees a GPU and cpu otherwise (only the availability check is mocked)."""
    import torch

    from mlipflow.execution import worker_device
    from mlipflow.training.hyperparams import MaceHyperParams

    hp = MaceHyperParams.tiny()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hp.device == "auto" and hp.resolved_device == "cpu" and hp.mace_options()["device"] == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert hp.resolved_device == "cuda" and hp.mace_options()["device"] == "cuda"
    assert worker_device("cpu") == "cpu"  # an explicit choice is kept
