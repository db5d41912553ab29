"""Typed MACE hyper-parameters that become mace-torch's own command-line arguments.

Field names are mace-torch's option names (``r_max``, ``num_channels``, ``max_L``, ...) so that the
contract with ``mace_run_train`` stays visible; :meth:`MaceHyperParams.to_mace_args` writes them out.
Tested with mace-torch 0.3.16.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlipflow.errors import ConfigError

#: mace-torch options that mlipflow sets itself (files, directories, names, E0s): not allowed in ``extra_args``
RESERVED_ARGS = frozenset(
    {
        "name", "seed", "work_dir", "log_dir", "model_dir", "checkpoints_dir", "results_dir", "downloads_dir",
        "train_file", "valid_file", "test_file", "E0s", "restart_latest", "foundation_model",
        "multiheads_finetuning", "pt_train_file", "pt_valid_file", "device", "default_dtype",
    }
)


class MaceHyperParams(BaseModel):
    """Hyper-parameters of one MACE training (units: Å, eV; loss weights are dimensionless).

    Parameters
    ----------
    model
        mace-torch model class.  ``ScaleShiftMACE`` (default) shifts every atom's interaction energy by the
        training set's mean above the E0s: with physical isolated-atom E0s that mean is the cohesive energy
        (about -3.5 eV/atom for Li2O with CHGNet), which ``MACE`` (no shift) must learn from scratch: a tiny
        ``MACE`` model trained for 10 epochs was still 3.6 eV/atom off.
    r_max
        Radial cutoff (Å).
    num_channels
        Number of embedding channels (width of the model).
    max_L
        Highest symmetry order L of the messages (0: invariant, 1, 2, ...).
    max_ell
        Highest ℓ of the spherical harmonics of the edge features.
    correlation
        Body order of the product basis minus one (correlation order).
    num_interactions
        Number of message-passing layers.
    num_radial_basis
        Number of Bessel radial basis functions.
    pair_repulsion
        Add mace-torch's ZBL screened-nuclear repulsion to the learned energy, so that atoms closer than any
        training frame still repel (MD stability at high temperature, where a small model trained on a few
        near-equilibrium frames can let two cations collapse onto each other).
    loss
        mace-torch loss (``weighted`` = energy + forces; ``stress`` or ``universal`` add stress).
    energy_weight, forces_weight, stress_weight
        Loss weights of energy (per atom), forces and stress.
    lr
        Initial learning rate.
    scheduler
        ``ReduceLROnPlateau`` (with ``lr_factor``, ``scheduler_patience`` in epochs) or ``ExponentialLR``
        (with ``lr_scheduler_gamma`` per epoch).
    weight_decay
        L2 weight decay of the AMSGrad/Adam optimiser.
    clip_grad
        Gradient-norm clipping tolerance (``None``: no clipping).
    max_num_epochs
        Total number of epochs (counted across restarts).
    patience
        Epochs without improvement of the validation loss before stopping.
    batch_size, valid_batch_size
        Frames per batch in training and validation.
    swa
        Use mace's stage two (formerly SWA): from epoch ``start_swa`` the energy weight is raised to
        ``swa_energy_weight`` and the learning rate lowered to ``swa_lr``.
    ema, ema_decay
        Exponential moving average of the weights.
    seed
        Seed of weights initialisation and batch order.
    device
        ``auto`` (the worker's: ``cuda`` when torch sees a GPU, else ``cpu``), ``cpu`` or ``cuda``.
    default_dtype
        ``float64`` (accurate, for tests and small data) or ``float32`` (faster on GPU).
    eval_interval
        Evaluate on the validation set every this many epochs.
    save_all_checkpoints
        Keep a checkpoint after every evaluated epoch, so that a killed run resumes from its last epoch
        (mace's default keeps only the best one).  The final model is then the last epoch's.
    extra_args
        Further mace-torch options passed verbatim (``{"scaling": "rms_forces_scaling"}``); options that
        mlipflow sets itself are refused.
    """

    model_config = ConfigDict(extra="forbid")

    model: Literal["MACE", "ScaleShiftMACE"] = "ScaleShiftMACE"
    r_max: float = Field(5.0, gt=0)
    num_channels: int = Field(32, ge=1)
    max_L: int = Field(0, ge=0, le=3)  # noqa: N815 - mace-torch's name
    max_ell: int = Field(3, ge=1)
    correlation: int = Field(3, ge=1)
    num_interactions: int = Field(2, ge=1)
    num_radial_basis: int = Field(8, ge=1)
    pair_repulsion: bool = False
    loss: Literal["weighted", "ef", "forces_only", "stress", "universal", "huber"] = "weighted"
    energy_weight: float = Field(1.0, ge=0)
    forces_weight: float = Field(100.0, ge=0)
    stress_weight: float = Field(1.0, ge=0)
    lr: float = Field(0.01, gt=0)
    scheduler: Literal["ReduceLROnPlateau", "ExponentialLR"] = "ReduceLROnPlateau"
    lr_factor: float = Field(0.8, gt=0, lt=1)
    scheduler_patience: int = Field(50, ge=1)
    lr_scheduler_gamma: float = Field(0.9993, gt=0, le=1)
    weight_decay: float = Field(5e-7, ge=0)
    clip_grad: float | None = 10.0
    max_num_epochs: int = Field(50, ge=1)
    patience: int = Field(2048, ge=1)
    batch_size: int = Field(10, ge=1)
    valid_batch_size: int = Field(10, ge=1)
    swa: bool = False
    start_swa: int | None = None
    swa_lr: float = 1e-3
    swa_energy_weight: float = 1000.0
    swa_forces_weight: float = 100.0
    ema: bool = False
    ema_decay: float = Field(0.99, gt=0, lt=1)
    seed: int = 123
    device: Literal["auto", "cpu", "cuda"] = "auto"
    default_dtype: Literal["float32", "float64"] = "float64"
    eval_interval: int = Field(1, ge=1)
    save_all_checkpoints: bool = True
    extra_args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> MaceHyperParams:
        reserved = sorted(set(self.extra_args) & RESERVED_ARGS)
        if reserved:
            raise ValueError(f"extra_args may not set {reserved}: mlipflow sets these itself")
        if self.swa and self.start_swa is not None and self.start_swa >= self.max_num_epochs:
            raise ValueError(f"start_swa ({self.start_swa}) must be below max_num_epochs ({self.max_num_epochs})")
        return self

    @classmethod
    def tiny(cls, **overrides: Any) -> MaceHyperParams:
        """The CPU-sized model campaigns start from (measured: ``bench/results/training_sweep.json``).

        16 channels, L=0, correlation 2, r_max 4 Å, float32, batch 4, lr 0.01, EMA 0.99 and mace's stage two for
        the last quarter of the epochs (energy weight 1000, lr 1e-3).  On 2 CPU cores, within minutes, epochs
        matter more than width: larger models (32 channels, L=1) and float64 (2.1x slower per epoch) were
        less accurate for the same wall time; stage two brings the energy error from a constant offset of
        up to 16 meV/atom down to 0.4-2 meV/atom at a few meV/Å in force.
        """
        values: dict[str, Any] = dict(
            num_channels=16, max_L=0, max_ell=1, correlation=2, num_interactions=2, r_max=4.0,
            num_radial_basis=6, batch_size=4, valid_batch_size=8, max_num_epochs=12, lr=0.01,
            forces_weight=100.0, energy_weight=1.0, default_dtype="float32", ema=True, ema_decay=0.99,
            swa=True, swa_lr=1e-3, swa_energy_weight=1000.0,
        )
        values.update(overrides)
        return cls(**values)

    @property
    def resolved_device(self) -> str:
        """The device of this training on the worker it runs on (see :func:`mlipflow.execution.worker_device`)."""
        from mlipflow.execution import worker_device

        return worker_device(self.device)

    @property
    def stage_two_start(self) -> int | None:
        """First epoch (0-based) of stage two, as mace-torch computes it when ``start_swa`` is not given."""
        if not self.swa:
            return None
        return self.start_swa if self.start_swa is not None else max(1, self.max_num_epochs // 4 * 3)

    def with_updates(self, **changes: Any) -> MaceHyperParams:
        """A validated copy with some fields changed."""
        try:
            return type(self)(**{**self.model_dump(), **changes})
        except ValueError as exc:
            raise ConfigError(f"invalid MACE hyper-parameters {changes}: {exc}") from exc

    def digest(self) -> str:
        """Stable hash of every field (part of a training run's identity)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()

    def mace_options(self) -> dict[str, Any]:
        """The mace-torch options (name -> value) these hyper-parameters stand for."""
        opts: dict[str, Any] = {
            "model": self.model,
            "r_max": self.r_max,
            "num_channels": self.num_channels,
            "max_L": self.max_L,
            "max_ell": self.max_ell,
            "correlation": self.correlation,
            "num_interactions": self.num_interactions,
            "num_radial_basis": self.num_radial_basis,
            "loss": self.loss,
            "energy_weight": self.energy_weight,
            "forces_weight": self.forces_weight,
            "stress_weight": self.stress_weight,
            "lr": self.lr,
            "scheduler": self.scheduler,
            "lr_factor": self.lr_factor,
            "scheduler_patience": self.scheduler_patience,
            "lr_scheduler_gamma": self.lr_scheduler_gamma,
            "weight_decay": self.weight_decay,
            "max_num_epochs": self.max_num_epochs,
            "patience": self.patience,
            "batch_size": self.batch_size,
            "valid_batch_size": self.valid_batch_size,
            "seed": self.seed,
            "device": self.resolved_device,
            "default_dtype": self.default_dtype,
            "eval_interval": self.eval_interval,
            "error_table": "PerAtomRMSEstressvirials" if self.loss in ("stress", "universal") else "PerAtomRMSE",
        }
        if self.clip_grad is not None:
            opts["clip_grad"] = self.clip_grad
        if self.swa:
            opts.update(swa=True, swa_lr=self.swa_lr, swa_energy_weight=self.swa_energy_weight,
                        swa_forces_weight=self.swa_forces_weight, start_swa=self.stage_two_start)
        if self.ema:
            opts.update(ema=True, ema_decay=self.ema_decay)
        if self.save_all_checkpoints:
            opts["save_all_checkpoints"] = True
        if self.pair_repulsion:
            opts["pair_repulsion"] = True
        opts.update(self.extra_args)
        return opts


#: mace-torch options declared ``action="store_true"`` (given bare, or left out); other booleans take a value
STORE_TRUE_ARGS = frozenset(
    {"swa", "ema", "save_all_checkpoints", "pair_repulsion", "restart_latest", "keep_checkpoints", "save_cpu",
     "distributed", "lbfgs", "dry_run", "wandb"}
)


def options_to_args(options: dict[str, Any]) -> list[str]:
    """mace-torch options as command-line arguments.

    ``store_true`` options become a bare ``--flag`` (or are left out when false); other booleans are
    written as ``--name=True``/``--name=False`` (mace's ``str2bool``); ``None`` values are left out.
    """
    args: list[str] = []
    for key, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool) and key in STORE_TRUE_ARGS:
            if value:
                args.append(f"--{key}")
        elif isinstance(value, dict):
            args.append(f"--{key}={value!r}")
        else:
            args.append(f"--{key}={value}")
    return args
