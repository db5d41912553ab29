"""jobflow Makers of the training stage: train one MACE model, a committee, or fine-tune a foundation model.

Jobs take and return small documents (a dataset version id in, a model id and its errors out); the models
themselves go to the model registry.  Every training job is marked for ``gpu`` workers
(:func:`mlipflow.execution.set_resource`); a committee is N independent member jobs plus a small job that
records the committee, so FireWorks can run the members in parallel.

Rerunning a job resumes its training from the last checkpoint, or returns the already registered model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Job, Maker, job

from mlipflow.execution import set_resource
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.registry import ModelRecord


def _output(record: ModelRecord) -> dict[str, Any]:
    """The small document a training job returns."""
    return {
        "model_id": record.id,
        "kind": record.kind,
        "dataset_version": record.dataset_version,
        "errors": {split: errs.get("all", {}) for split, errs in record.errors.items()},
        "wall_time": record.wall_time,
        "device": record.device,
        "members": record.members,
        "forgetting": {k: v for k, v in (record.extra.get("forgetting") or {}).items() if k.startswith("ratio")},
    }


@job
def train_mace_job(
    dataset_version: str,
    hyperparams: dict[str, Any],
    model_name: str = "mace",
    e0s: dict[str, float] | None = None,
    bootstrap_seed: int | None = None,
    divergence_factor: float = 100.0,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Train one MACE model on a dataset version (see :func:`~mlipflow.training.trainer.train_model`)."""
    from mlipflow.storage import get_stores
    from mlipflow.training.trainer import train_model

    record = train_model(get_stores(), dataset_version, MaceHyperParams(**hyperparams), name=model_name, e0s=e0s,
                         bootstrap_seed=bootstrap_seed, divergence_factor=divergence_factor, timeout=timeout)
    return _output(record)


@job
def register_committee_job(members: list[dict[str, Any]], name: str = "committee") -> dict[str, Any]:
    """Record the committee of the member models trained by the member jobs."""
    from mlipflow.storage import get_stores
    from mlipflow.training.registry import ModelRegistry

    record = ModelRegistry(get_stores()).register_committee([m["model_id"] for m in members], name=name)
    return _output(record)


@job
def finetune_job(
    dataset_version: str,
    foundation: str,
    mode: str,
    hyperparams: dict[str, Any],
    model_name: str | None = None,
    replay_version: str | None = None,
    replay_file: str | None = None,
    replay_ratio: float = 1.0,
    holdout_version: str | None = None,
    holdout_file: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Fine-tune a foundation model (see :func:`~mlipflow.training.finetune.finetune_model`)."""
    from mlipflow.storage import get_stores
    from mlipflow.training.finetune import finetune_model

    record = finetune_model(
        get_stores(), dataset_version, foundation, mode=mode, hyperparams=MaceHyperParams(**hyperparams),  # type: ignore[arg-type]
        name=model_name, replay_version=replay_version, replay_file=replay_file, replay_ratio=replay_ratio,
        holdout_version=holdout_version, holdout_file=holdout_file, timeout=timeout,
    )
    return _output(record)


@dataclass
class MaceTrainMaker(Maker):
    """Train a MACE model from scratch on a dataset version with mace-torch (a ``gpu`` job).

    Parameters
    ----------
    name
        Job name.
    hyperparams
        :class:`~mlipflow.training.hyperparams.MaceHyperParams`.
    model_name
        Name of the registered model.
    e0s
        Isolated-atom energies (symbol -> eV); default: the labeler's, else a stated least-squares fit.
    divergence_factor
        Stop when the validation loss grows above this many times its best value.
    timeout
        Kill the training after this many seconds (s).
    """

    name: str = "mace train"
    hyperparams: MaceHyperParams = field(default_factory=MaceHyperParams)
    model_name: str = "mace"
    e0s: dict[str, float] | None = None
    divergence_factor: float = 100.0
    timeout: float | None = None

    def make(self, dataset_version: str, seed: int | None = None, bootstrap_seed: int | None = None) -> Job:
        """The training job for ``dataset_version`` (``seed`` overrides the hyper-parameters' seed)."""
        hp = self.hyperparams if seed is None else self.hyperparams.with_updates(seed=seed)
        new_job = train_mace_job(dataset_version, hp.model_dump(mode="json"), model_name=self.model_name,
                                 e0s=self.e0s, bootstrap_seed=bootstrap_seed,
                                 divergence_factor=self.divergence_factor, timeout=self.timeout)
        new_job.name = self.name
        set_resource(new_job, "gpu")
        return new_job


@dataclass
class CommitteeTrainMaker(Maker):
    """Train a committee: ``n_models`` member jobs (seeds ``seed, seed + 1, ...``) and a job recording it.

    Parameters
    ----------
    name
        Flow name.
    trainer
        The member Maker (its hyper-parameters' seed is the committee's base seed).
    n_models
        Committee size (at least 2).
    bootstrap
        Train each member on a bootstrap resample of the training split (seeded by the member's seed).
    committee_name
        Name of the committee record.
    """

    name: str = "mace committee"
    trainer: MaceTrainMaker = field(default_factory=MaceTrainMaker)
    n_models: int = 3
    bootstrap: bool = False
    committee_name: str = "committee"

    def make(self, dataset_version: str) -> Flow:
        """The flow of member jobs (independent, parallel on workers) and the recording job."""
        if self.n_models < 2:
            raise ValueError(f"a committee needs at least 2 models, got n_models={self.n_models}")
        base = self.trainer.hyperparams.seed
        members = []
        for i in range(self.n_models):
            member = self.trainer.make(dataset_version, seed=base + i,
                                       bootstrap_seed=base + i if self.bootstrap else None)
            member.name = f"{self.trainer.name} {i + 1}/{self.n_models}"
            members.append(member)
        record = register_committee_job([m.output for m in members], name=self.committee_name)
        record.name = f"{self.name} record"
        return Flow([*members, record], output=record.output, name=self.name)


@dataclass
class FineTuneMaker(Maker):
    """Fine-tune a local foundation model (path or registered id) on a dataset version (a ``gpu`` job).

    Parameters
    ----------
    name
        Job name.
    mode
        ``plain``, ``replay`` (mace-torch multi-head with a replay set) or ``mixed`` (replay frames mixed
        into a single head at ``replay_ratio``).
    hyperparams
        Learning rate, epochs, batch size, seed, device, dtype (architecture comes from the foundation).
    model_name
        Name of the registered model (default ``finetune-<mode>``).
    replay_version, replay_file
        Replay frames: a dataset version's train split, or a local extxyz file.
    replay_ratio
        Replay frames per new frame (``mixed``).
    holdout_version, holdout_file
        Foundation-domain hold-out for the forgetting measurement.
    timeout
        Kill the training after this many seconds (s).
    """

    name: str = "mace fine-tune"
    mode: str = "replay"
    hyperparams: MaceHyperParams = field(default_factory=lambda: MaceHyperParams(lr=1e-3, max_num_epochs=10))
    model_name: str | None = None
    replay_version: str | None = None
    replay_file: str | None = None
    replay_ratio: float = 1.0
    holdout_version: str | None = None
    holdout_file: str | None = None
    timeout: float | None = None

    def make(self, dataset_version: str, foundation: str) -> Job:
        """The fine-tuning job of ``foundation`` (a ``.model`` path or a registered model id)."""
        new_job = finetune_job(
            dataset_version, str(foundation), self.mode, self.hyperparams.model_dump(mode="json"),
            model_name=self.model_name, replay_version=self.replay_version, replay_file=self.replay_file,
            replay_ratio=self.replay_ratio, holdout_version=self.holdout_version, holdout_file=self.holdout_file,
            timeout=self.timeout,
        )
        new_job.name = self.name
        set_resource(new_job, "gpu")
        return new_job
