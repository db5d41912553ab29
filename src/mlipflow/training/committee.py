"""Committees of MACE models: training N members from different seeds, and an ASE committee calculator.

The members differ by seed (weights initialisation and batch order) and, optionally, by a bootstrap
resample of the training split.  Each member is an ordinary training run (its own run key, directory and
registry record), so the members can run as N parallel jobs on GPU workers (see
:class:`~mlipflow.training.jobs.CommitteeTrainMaker`) or, here, as parallel child processes.

:class:`CommitteeCalculator` wraps mace-torch's ``MACECalculator(model_paths=[...])`` (which already returns
the per-model forces as ``forces_comm``) and adds the spread that active learning selects on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from mlipflow.storage import Stores
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.registry import ModelRecord, ModelRegistry
from mlipflow.training.trainer import evaluate_errors, load_calculator, train_model

logger = logging.getLogger(__name__)


class CommitteeCalculator(Calculator):
    """ASE calculator returning the committee mean and its spread.

    Results: ``energy`` (eV), ``free_energy``, ``forces`` (eV/Å), ``stress`` (eV/Å³, when the models give it)
    are committee means; ``energies_committee`` (eV, one per model), ``energy_std`` (eV),
    ``forces_committee`` (n_models x n_atoms x 3, eV/Å), ``forces_spread`` (per atom, eV/Å: the root mean
    square over models of the distance of each model's force vector from the mean force vector) and
    ``max_forces_spread`` (eV/Å, the largest per-atom spread).

    Parameters
    ----------
    model_paths
        Two or more mace-torch ``.model`` files.
    device
        ``cpu`` or ``cuda``.
    default_dtype
        ``float64`` or ``float32``.
    head
        Model head to use (multi-head models); default mace's choice.
    """

    implemented_properties = ("energy", "free_energy", "forces", "stress", "forces_spread", "max_forces_spread",
                              "energy_std")

    def __init__(self, model_paths: Sequence[str | Path], *, device: str = "cpu", default_dtype: str = "float64",
                 head: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if len(model_paths) < 2:
            raise ValueError(f"a committee needs at least 2 models, got {len(model_paths)}")
        self.model_paths = [str(p) for p in model_paths]
        self.mace = load_calculator(list(self.model_paths), device=device, default_dtype=default_dtype, head=head)

    @classmethod
    def from_registry(cls, stores: Stores, committee_id: str, **kwargs: Any) -> CommitteeCalculator:
        """The calculator of a registered committee (its members' files fetched into the local cache)."""
        registry = ModelRegistry(stores)
        record = registry.get(committee_id)
        kwargs.setdefault("default_dtype", record.hyperparams.get("default_dtype", "float64"))
        return cls(registry.member_files(committee_id), **kwargs)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms.copy()
        atoms.calc = self.mace
        self.mace.calculate(atoms, properties=["energy", "forces"] + (["stress"] if atoms.cell.rank == 3 else []),
                            system_changes=all_changes)
        res = self.mace.results
        forces_comm = np.asarray(res["forces_comm"], dtype=float)
        mean = forces_comm.mean(axis=0)
        spread = np.sqrt(((forces_comm - mean) ** 2).sum(axis=-1).mean(axis=0))
        energies = np.asarray(res.get("energy_comm", [res["energy"]]), dtype=float).ravel()
        self.results = {
            "energy": float(res["energy"]),
            "free_energy": float(res["energy"]),
            "forces": mean,
            "energies_committee": energies,
            "energy_std": float(energies.std()),
            "forces_committee": forces_comm,
            "forces_spread": spread,
            "max_forces_spread": float(spread.max()) if len(spread) else 0.0,
        }
        if "stress" in res:
            self.results["stress"] = np.asarray(res["stress"], dtype=float)


def assess_committee(stores: Stores, committee_id: str, splits: tuple[str, ...] = ("valid", "test")
                     ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Errors of a committee's mean on its dataset's splits, and its force spread on the validation frames.

    Returns
    -------
    errors, spread
        ``errors``: split -> {``rmse_e_per_atom`` eV/atom, ``rmse_f`` eV/Å, ``n_frames``}; ``spread``: the
        largest-atom force spread (eV/Å) over the validation frames: ``p50``, ``p90``, ``max``, ``mean``,
        ``n_frames`` (the scale of the relative trust window), and ``p50@<family>``, ``n_frames@<family>``.
    """
    from mlipflow.data import Dataset
    from mlipflow.training.trainer import _EVAL_LOCK, set_torch_threads

    record = ModelRegistry(stores).get(committee_id)
    dataset = Dataset(stores)
    errors: dict[str, dict[str, float]] = {}
    spread: dict[str, float] = {}
    with _EVAL_LOCK:
        set_torch_threads(stores.settings.torch_threads)
        from mlipflow.execution import worker_device

        calc = CommitteeCalculator.from_registry(stores, committee_id, device=worker_device())
        for split in splits:
            frames = [f for f, _ in dataset.version_frames(record.dataset_version, split)]  # type: ignore[arg-type]
            if not frames:
                continue
            errors[split] = evaluate_errors(calc, frames)["all"]
            if split == "valid":
                values, families = [], []
                for frame in frames:
                    atoms = frame.to_atoms()
                    atoms.calc = calc
                    atoms.get_potential_energy()
                    values.append(float(calc.results["max_forces_spread"]))
                    families.append(frame.provenance.family or "unknown")
                spread = spread_statistics(np.asarray(values), families)
    return errors, spread


def spread_statistics(values: np.ndarray, families: list[str]) -> dict[str, float]:
    """p50, p90, max, mean and count of largest-atom force spreads (eV/Å), overall and ``p50@<family>`` per family."""
    out = {"p50": float(np.percentile(values, 50)), "p90": float(np.percentile(values, 90)),
           "max": float(values.max()), "mean": float(values.mean()), "n_frames": float(values.size)}
    fams = np.asarray(families, dtype=object)
    for fam in sorted(set(families)):
        sub = values[fams == fam]
        out[f"p50@{fam}"] = float(np.percentile(sub, 50))
        out[f"n_frames@{fam}"] = float(sub.size)
    return out


def committee_seeds(base_seed: int, n: int) -> list[int]:
    """Seeds of the members of an ``n``-model committee: ``base_seed, base_seed + 1, ...``."""
    return [base_seed + i for i in range(n)]


def train_committee(
    stores: Stores,
    dataset_version: str,
    hyperparams: MaceHyperParams | None = None,
    *,
    n_models: int = 3,
    name: str = "committee",
    member_name: str = "mace",
    bootstrap: bool = False,
    parallel: int = 1,
    init_from: str | None = None,
    **train_kwargs: Any,
) -> ModelRecord:
    """Train ``n_models`` members (seeds ``hyperparams.seed + i``) and register the committee.

    Parameters
    ----------
    stores
        The stores.
    dataset_version
        Dataset version id.
    hyperparams
        Hyper-parameters of every member (only the seed differs).
    n_models
        Committee size (at least 2).
    name
        Name of the committee record.
    member_name
        Name of each member model.  A member run is identified by data, hyper-parameters (seed
        included) and name, so a model already trained with the same seed and name is reused.
    bootstrap
        Train each member on a bootstrap resample of the training split (seeded by the member's seed).
    parallel
        Members trained at the same time (child processes; each uses ``settings.torch_threads``).
    init_from
        Warm start: a committee id (member ``i`` starts from its member ``i``) or one model id for all.
    **train_kwargs
        Passed to :func:`~mlipflow.training.trainer.train_model`.
    """
    if n_models < 2:
        raise ValueError(f"a committee needs at least 2 models, got n_models={n_models}")
    hp = hyperparams or MaceHyperParams()
    seeds = committee_seeds(hp.seed, n_models)

    def one(index: int) -> ModelRecord:
        seed = seeds[index]
        return train_model(stores, dataset_version, hp.with_updates(seed=seed), name=member_name,
                           bootstrap_seed=seed if bootstrap else None,
                           init_from=warm_start_member(stores, init_from, index), **train_kwargs)

    if parallel > 1:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            members = list(pool.map(one, range(n_models)))
    else:
        members = [one(i) for i in range(n_models)]
    return register_assessed_committee(stores, [m.id for m in members], name=name,
                                       extra={"seeds": seeds, "bootstrap": bootstrap})


def warm_start_member(stores: Stores, init_from: str | None, index: int) -> str | None:
    """The model member ``index`` of a new committee starts from: member ``index`` of committee ``init_from``."""
    if not init_from:
        return None
    record = ModelRegistry(stores).get(init_from)
    if record.kind != "committee":
        return record.id
    return record.members[index % len(record.members)]


def register_assessed_committee(stores: Stores, member_ids: list[str], *, name: str,
                                extra: dict[str, Any] | None = None) -> ModelRecord:
    """Register a committee with its errors (committee mean on valid/test) and its validation force spread."""
    registry = ModelRegistry(stores)
    record = registry.register_committee(member_ids, name=name, extra=extra or {})
    if record.errors and record.extra.get("spread"):
        return record
    errors, spread = assess_committee(stores, record.id)
    registry.collection.update_one({"_id": record.id}, {"$set": {"errors": {s: {"all": e} for s, e in
                                                                             errors.items()},
                                                                "extra.spread": spread}})
    return registry.get(record.id)


def committee_from_registry(model_id: str, device: str = "auto") -> CommitteeCalculator:
    """Calculator factory for jobs: the committee (or single model) ``model_id`` of the configured store.

    ``device`` ``auto``: CUDA when the worker has a GPU, else CPU.  Use as
    ``CalculatorFactory("mlipflow.training.committee:committee_from_registry", {"model_id": ...})``.
    """
    from mlipflow.execution import worker_device
    from mlipflow.storage import get_stores

    return CommitteeCalculator.from_registry(get_stores(), model_id, device=worker_device(device))


def model_from_registry(model_id: str, device: str = "auto", default_dtype: str | None = None) -> Calculator:
    """Calculator factory for jobs: one registered model (``MACECalculator``); a committee id gives its mean.

    ``device`` ``auto``: CUDA when the worker has a GPU, else CPU.  Use as
    ``CalculatorFactory("mlipflow.training.committee:model_from_registry", {"model_id": ...})``.
    """
    from mlipflow.execution import worker_device
    from mlipflow.storage import get_stores

    device = worker_device(device)
    stores = get_stores()
    registry = ModelRegistry(stores)
    record = registry.get(model_id)
    dtype = default_dtype or record.hyperparams.get("default_dtype", "float64")
    if record.kind == "committee":
        return CommitteeCalculator.from_registry(stores, model_id, device=device, default_dtype=dtype)
    return load_calculator(registry.model_file(model_id), device=device, default_dtype=dtype)
