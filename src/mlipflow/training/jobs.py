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

from mlipflow.execution import Resource, set_resource
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.registry import ModelRecord
from mlipflow.training.schemas import ModelDoc


def model_doc(record: ModelRecord) -> ModelDoc:
    """The small document a training job returns for a registered model or committee."""
    return ModelDoc(
        model_id=record.id, kind=record.kind, dataset_version=record.dataset_version,
        errors={split: errs.get("all", {}) for split, errs in record.errors.items()},
        wall_time=record.wall_time, device=record.device, members=record.members, kept_epoch=record.kept_epoch,
        warm_start=record.warm_start, spread=dict(record.extra.get("spread") or {}),
        forgetting={k: v for k, v in (record.extra.get("forgetting") or {}).items() if k.startswith("ratio")},
    )


def _id(model: Any) -> str | None:
    if model is None or isinstance(model, str):
        return model
    return model["model_id"] if isinstance(model, dict) else model.model_id


@job(output_schema=ModelDoc)
def train_mace_job(
    dataset_version: str,
    hyperparams: dict[str, Any],
    model_name: str = "mace",
    e0s: dict[str, float] | None = None,
    bootstrap_seed: int | None = None,
    divergence_factor: float = 100.0,
    timeout: float | None = None,
    init_from: Any = None,
    member_index: int = 0,
) -> ModelDoc:
    """Train one MACE model on a dataset version (see :func:`~mlipflow.training.trainer.train_model`).

    ``init_from`` (a model or committee id, or a training job's output): warm start from that model, or from
    member ``member_index`` of that committee.
    """
    from mlipflow.storage import get_stores
    from mlipflow.training.committee import warm_start_member
    from mlipflow.training.trainer import train_model

    stores = get_stores()
    record = train_model(stores, dataset_version, MaceHyperParams(**hyperparams), name=model_name, e0s=e0s,
                         bootstrap_seed=bootstrap_seed, divergence_factor=divergence_factor, timeout=timeout,
                         init_from=warm_start_member(stores, _id(init_from), member_index))
    return model_doc(record)


@job(output_schema=ModelDoc)
def register_committee_job(members: list[Any], name: str = "committee") -> ModelDoc:
    """Record the committee of the member models trained by the member jobs, with its errors and spread."""
    from mlipflow.storage import get_stores
    from mlipflow.training.committee import register_assessed_committee

    record = register_assessed_committee(get_stores(), [_id(m) for m in members], name=name)
    return model_doc(record)


@job(output_schema=ModelDoc)
def train_committee_job(
    dataset_version: str,
    hyperparams: dict[str, Any],
    n_models: int,
    name: str = "committee",
    member_name: str = "mace",
    bootstrap: bool = False,
    parallel: int = 2,
    init_from: Any = None,
    divergence_factor: float = 100.0,
    timeout: float | None = None,
) -> ModelDoc:
    """Train every member of a committee in this job, ``parallel`` at a time, and record the committee."""
    from mlipflow.storage import get_stores
    from mlipflow.training.committee import train_committee

    record = train_committee(get_stores(), dataset_version, MaceHyperParams(**hyperparams), n_models=n_models,
                             name=name, member_name=member_name, bootstrap=bootstrap, parallel=parallel,
                             init_from=_id(init_from), divergence_factor=divergence_factor, timeout=timeout)
    return model_doc(record)


@job(output_schema=ModelDoc)
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
) -> ModelDoc:
    """Fine-tune a foundation model (see :func:`~mlipflow.training.finetune.finetune_model`)."""
    from mlipflow.storage import get_stores
    from mlipflow.training.finetune import finetune_model

    record = finetune_model(
        get_stores(), dataset_version, foundation, mode=mode, hyperparams=MaceHyperParams(**hyperparams),  # type: ignore[arg-type]
        name=model_name, replay_version=replay_version, replay_file=replay_file, replay_ratio=replay_ratio,
        holdout_version=holdout_version, holdout_file=holdout_file, timeout=timeout,
    )
    return model_doc(record)


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
    resource
        Worker category (``gpu`` by default; the campaign's ``resources.training``).
    """

    name: str = "mace train"
    hyperparams: MaceHyperParams = field(default_factory=MaceHyperParams)
    model_name: str = "mace"
    e0s: dict[str, float] | None = None
    divergence_factor: float = 100.0
    timeout: float | None = None

    resource: Resource = "gpu"

    def make(self, dataset_version: str, seed: int | None = None, bootstrap_seed: int | None = None,
             init_from: Any = None, member_index: int = 0) -> Job:
        """The training job for ``dataset_version`` (``seed`` overrides the hyper-parameters' seed).

        ``init_from``: warm start from this model (or member ``member_index`` of this committee).
        """
        hp = self.hyperparams if seed is None else self.hyperparams.with_updates(seed=seed)
        new_job = train_mace_job(dataset_version, hp.model_dump(mode="json"), model_name=self.model_name,
                                 e0s=self.e0s, bootstrap_seed=bootstrap_seed,
                                 divergence_factor=self.divergence_factor, timeout=self.timeout,
                                 init_from=init_from, member_index=member_index)
        new_job.name = self.name
        set_resource(new_job, self.resource)
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
    members_per_job
        1: one job per member (members run in parallel on as many workers); N > 1: one job trains all members,
        N at a time (child processes on one node: a multi-core or multi-GPU worker, or a laptop).
    """

    name: str = "mace committee"
    trainer: MaceTrainMaker = field(default_factory=MaceTrainMaker)
    n_models: int = 3
    bootstrap: bool = False
    committee_name: str = "committee"
    members_per_job: int = 1

    def make(self, dataset_version: str, init_from: Any = None) -> Flow:
        """The flow of member jobs (independent, parallel on workers) and the recording job.

        ``init_from``: warm start, member ``i`` from member ``i`` of this committee (an id or a job's output).
        """
        if self.n_models < 2:
            raise ValueError(f"a committee needs at least 2 models, got n_models={self.n_models}")
        if self.members_per_job > 1:
            hp = self.trainer.hyperparams
            whole = train_committee_job(dataset_version, hp.model_dump(mode="json"), self.n_models,
                                        name=self.committee_name, member_name=self.trainer.model_name,
                                        bootstrap=self.bootstrap, parallel=self.members_per_job,
                                        init_from=init_from, divergence_factor=self.trainer.divergence_factor,
                                        timeout=self.trainer.timeout)
            whole.name = f"{self.name} ({self.n_models} members, {self.members_per_job} at a time)"
            set_resource(whole, self.trainer.resource)
            return Flow([whole], output=whole.output, name=self.name)
        base = self.trainer.hyperparams.seed
        members = []
        for i in range(self.n_models):
            member = self.trainer.make(dataset_version, seed=base + i,
                                       bootstrap_seed=base + i if self.bootstrap else None,
                                       init_from=init_from, member_index=i)
            member.name = f"{self.trainer.name} {i + 1}/{self.n_models}"
            members.append(member)
        record = register_committee_job([m.output for m in members], name=self.committee_name)
        record.name = f"{self.name} record"
        set_resource(record, self.trainer.resource)
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
    resource: Resource = "gpu"

    def make(self, dataset_version: str, foundation: str) -> Job:
        """The fine-tuning job of ``foundation`` (a ``.model`` path or a registered model id)."""
        new_job = finetune_job(
            dataset_version, str(foundation), self.mode, self.hyperparams.model_dump(mode="json"),
            model_name=self.model_name, replay_version=self.replay_version, replay_file=self.replay_file,
            replay_ratio=self.replay_ratio, holdout_version=self.holdout_version, holdout_file=self.holdout_file,
            timeout=self.timeout,
        )
        new_job.name = self.name
        set_resource(new_job, self.resource)
        return new_job
