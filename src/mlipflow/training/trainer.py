"""Train a MACE model on a dataset version: check and export the splits, pick E0s, run mace-torch, evaluate,
register.

The splits are the dataset version's own (``train``/``valid``/``test``), exported as separate extxyz files
and given to mace-torch as ``--train_file``/``--valid_file``/``--test_file``; they are never re-drawn.
Every frame is checked before anything starts: a NaN or infinite energy, force or stress refuses the
dataset with a :class:`~mlipflow.errors.DataError` naming the frame.

A run is identified by its *run key* (dataset version, hyper-parameters, E0s, foundation and replay files,
bootstrap seed, name): its directory ``MLIPFLOW_HOME/training/<name>-<run key>`` is stable, so a killed
job resumes from its last checkpoint when rerun, and a run that already registered a model returns that
model at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.io import write

from mlipflow.data import Dataset, LabeledFrame, LabelerInfo
from mlipflow.data.io import frame_to_extxyz_atoms
from mlipflow.errors import DataError, TrainingError
from mlipflow.storage import Stores
from mlipflow.training.curves import EpochPoint, plot_curves
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.mace_runner import TORCH_LOCK, MaceRunResult, run_mace_train
from mlipflow.training.registry import ModelKind, ModelRecord, ModelRegistry

logger = logging.getLogger(__name__)

#: keys of ``LabelerInfo.settings`` that may hold isolated-atom energies (element symbol -> eV)
E0_SETTING_KEYS = ("e0s", "isolated_atom_energies", "atomic_energies")
#: committee members train in parallel child processes, but their in-process evaluation takes turns (with the
#: runner's model saving and compiling: one lock for all in-process torch work)
_EVAL_LOCK = TORCH_LOCK


@dataclass
class TrainingFiles:
    """The extxyz files of one training run and what they hold.

    Attributes
    ----------
    train, valid, test
        Paths (``test`` is ``None`` when the version has no test frames).
    counts
        Frames per split as written (train counts bootstrap duplicates).
    elements
        Chemical symbols present.
    labeler
        The labeler of the version's frames.
    frames
        The frames per split (for E0s and final errors).
    """

    train: Path
    valid: Path
    test: Path | None
    counts: dict[str, int]
    elements: list[str]
    labeler: LabelerInfo
    frames: dict[str, list[LabeledFrame]]


def check_frame(frame: LabeledFrame, frame_id: str | None = None) -> None:
    """Raise :class:`DataError` if a frame has no energy/forces or any non-finite label."""
    fid = frame_id or frame.content_hash
    if frame.energy is None or frame.forces is None:
        raise DataError(f"frame {fid} has no energy or forces: only labeled frames can be trained on")
    if not math.isfinite(frame.energy):
        raise DataError(f"frame {fid} has a non-finite energy ({frame.energy}); remove or relabel it")
    forces = np.asarray(frame.forces, dtype=float)
    if forces.shape != (frame.natoms, 3):
        raise DataError(f"frame {fid}: forces have shape {forces.shape}, expected ({frame.natoms}, 3)")
    if not np.all(np.isfinite(forces)):
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(forces))[:, 0]})
        raise DataError(
            f"frame {fid} has NaN or infinite forces on atom(s) {bad[:10]}; the dataset is refused before "
            "training: remove or relabel the frame and make a new dataset version"
        )
    if frame.stress is not None and not np.all(np.isfinite(np.asarray(frame.stress, dtype=float))):
        raise DataError(f"frame {fid} has a NaN or infinite stress; remove or relabel it")


def resolve_e0s(
    frames: Iterable[LabeledFrame], labeler: LabelerInfo, given: dict[str, float] | None = None,
    isolated: dict[str, float] | None = None,
) -> tuple[dict[str, float], str]:
    """Isolated-atom energies (symbol -> eV) for the elements of ``frames``, and where they came from.

    Order: ``given``; else the labeler's settings (``e0s``/``isolated_atom_energies``/``atomic_energies``)
    when they cover every element; else ``isolated``, the labeler's own labels of isolated atoms (a dataset
    version's ``isolated_atoms``, source ``isolated-atom labels``) when they cover every element; else a
    least-squares fit of total energies to element counts
    (``least-squares``; stated in the log and the registry, and not physical isolated-atom energies when
    the compositions are collinear, e.g. one stoichiometry only).
    """
    frames = list(frames)
    elements = sorted({el.symbol for f in frames for el in f.structure.composition.elements},
                      key=lambda s: atomic_numbers[s])
    if given:
        missing = [e for e in elements if e not in given]
        if missing:
            raise TrainingError(f"E0s given for {sorted(given)} but the dataset also holds {missing}")
        return {e: float(given[e]) for e in elements}, "given"
    for key in E0_SETTING_KEYS:
        table = labeler.settings.get(key)
        if isinstance(table, dict) and all(e in table for e in elements):
            return {e: float(table[e]) for e in elements}, "labeler"
    if isolated and all(e in isolated for e in elements):
        return {e: float(isolated[e]) for e in elements}, "isolated-atom labels"
    counts = np.array([[f.structure.composition[e] for e in elements] for f in frames], dtype=float)
    energies = np.array([f.energy for f in frames], dtype=float)
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    e0s = {e: float(v) for e, v in zip(elements, solution, strict=True)}
    logger.warning(
        "labeler %s states no isolated-atom energies: E0s fitted by least squares on %d training frames: %s (eV)",
        labeler.describe(), len(frames), {k: round(v, 4) for k, v in e0s.items()},
    )
    return e0s, "least-squares"


def e0s_to_mace(e0s: dict[str, float]) -> str:
    """E0s as mace-torch's ``--E0s`` dictionary string (atomic number -> eV)."""
    return repr({atomic_numbers[s]: float(v) for s, v in sorted(e0s.items(), key=lambda kv: atomic_numbers[kv[0]])})


def _write_extxyz(frames: list[tuple[LabeledFrame, str]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [frame_to_extxyz_atoms(f, s) for f, s in frames]
    write(path, images, format="extxyz", write_results=False)


def prepare_training_files(
    dataset: Dataset,
    version_id: str,
    directory: str | Path,
    *,
    bootstrap_seed: int | None = None,
    extra_train_atoms: list[Atoms] | None = None,
) -> TrainingFiles:
    """Check every frame of a version and write its splits as extxyz files in ``directory``.

    Parameters
    ----------
    dataset
        The dataset of the store.
    version_id
        Dataset version id.
    directory
        Where ``train.xyz``, ``valid.xyz`` and ``test.xyz`` go.
    bootstrap_seed
        If given, the training file holds a bootstrap resample (with replacement, same size) of the
        training split drawn with this seed; valid and test are unchanged.
    extra_train_atoms
        Labeled Atoms (``REF_*`` keys) appended to the training file only (replay frames mixed in).

    Raises
    ------
    DataError
        A frame has a NaN/infinite label, or the version has no training or no validation frames.
    """
    directory = Path(directory)
    by_split: dict[str, list[tuple[LabeledFrame, str]]] = defaultdict(list)
    for frame, split in dataset.version_frames(version_id):
        check_frame(frame)
        by_split[split].append((frame, split))
    if not by_split["train"]:
        raise DataError(f"dataset version {version_id} has no training frames")
    if not by_split["valid"]:
        raise DataError(
            f"dataset version {version_id} has no validation frames; make a version with a valid fraction "
            "(e.g. fractions={'train': 0.8, 'valid': 0.1, 'test': 0.1}) — mlipflow does not re-draw splits"
        )
    labelers = {f.labeler.settings_hash: f.labeler for f, _ in by_split["train"]}
    labeler = next(iter(labelers.values()))
    train = by_split["train"]
    if bootstrap_seed is not None:
        rng = np.random.default_rng(bootstrap_seed)
        train = [train[i] for i in rng.integers(0, len(train), len(train))]
    _write_extxyz(train, directory / "train.xyz")
    if extra_train_atoms:
        write(directory / "train.xyz", extra_train_atoms, format="extxyz", write_results=False, append=True)
    _write_extxyz(by_split["valid"], directory / "valid.xyz")
    test_path = None
    if by_split["test"]:
        test_path = directory / "test.xyz"
        _write_extxyz(by_split["test"], test_path)
    elements = sorted({el.symbol for f, _ in by_split["train"] + by_split["valid"]
                       for el in f.structure.composition.elements}, key=lambda s: atomic_numbers[s])
    return TrainingFiles(
        train=directory / "train.xyz", valid=directory / "valid.xyz", test=test_path,
        counts={"train": len(train) + len(extra_train_atoms or []), "valid": len(by_split["valid"]),
                "test": len(by_split["test"])},
        elements=elements, labeler=labeler,
        frames={s: [f for f, _ in by_split[s]] for s in ("train", "valid", "test")},
    )


# ------------------------------------------------------------------------------------------ evaluation
def load_calculator(model_paths: str | Path | list[str | Path], *, device: str = "cpu",
                    default_dtype: str = "float64", head: str | None = None) -> Any:
    """mace-torch's ``MACECalculator`` for one model or a committee of models (a list of paths)."""
    from mace.calculators import MACECalculator

    paths = [str(p) for p in model_paths] if isinstance(model_paths, list | tuple) else str(model_paths)
    kwargs: dict[str, Any] = {"model_paths": paths, "device": device, "default_dtype": default_dtype}
    if head is not None:
        kwargs["head"] = head
    return MACECalculator(**kwargs)


def evaluate_errors(calc: Any, items: Iterable[LabeledFrame | Atoms]) -> dict[str, dict[str, float]]:
    """RMSEs of a calculator against labeled frames (or labeled Atoms), per config type and ``all``.

    Returns
    -------
    dict
        config type -> {``rmse_e_per_atom`` (eV/atom), ``rmse_f`` (eV/Å, per component), ``n_frames``}.
    """
    sq_e: dict[str, list[float]] = defaultdict(list)
    sq_f: dict[str, list[float]] = defaultdict(list)
    for item in items:
        if isinstance(item, LabeledFrame):
            atoms = item.to_atoms()
            ref_e, ref_f, ctype = item.energy, np.asarray(item.forces), item.config_type
        else:
            atoms = item.copy()
            ref_e = item.info.get("REF_energy", None)
            ref_f = item.arrays.get("REF_forces", None)
            if ref_e is None and item.calc is not None:
                ref_e, ref_f = item.get_potential_energy(), item.get_forces()
            ctype = str(item.info.get("config_type", "Default"))
        atoms.calc = calc
        n = len(atoms)
        e = atoms.get_potential_energy()
        f = atoms.get_forces()
        for key in (ctype, "all"):
            sq_e[key].append(((e - ref_e) / n) ** 2)
            sq_f[key].extend(((f - np.asarray(ref_f)) ** 2).ravel().tolist())
    return {
        key: {"rmse_e_per_atom": float(np.sqrt(np.mean(sq_e[key]))), "rmse_f": float(np.sqrt(np.mean(sq_f[key]))),
              "n_frames": len(sq_e[key])}
        for key in sq_e
    }


def set_torch_threads(threads: int) -> None:
    """``torch.set_num_threads`` for in-process inference (``MlipflowSettings.torch_threads``)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))


# ------------------------------------------------------------------------------------------ training
def run_key(**parts: Any) -> str:
    """16 hex digits identifying a training run from its defining parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_model(
    stores: Stores,
    dataset_version: str,
    hyperparams: MaceHyperParams | None = None,
    *,
    name: str = "mace",
    kind: ModelKind = "mace",
    e0s: dict[str, float] | None = None,
    bootstrap_seed: int | None = None,
    extra_train_atoms: list[Atoms] | None = None,
    extra_options: dict[str, Any] | None = None,
    key_parts: dict[str, Any] | None = None,
    e0s_option: str | None = None,
    after_training: Callable[[MaceRunResult, TrainingFiles], dict[str, Any]] | None = None,
    register: bool = True,
    divergence_factor: float = 100.0,
    timeout: float | None = None,
    on_epoch: Callable[[EpochPoint], None] | None = None,
    evaluate_splits: tuple[str, ...] = ("train", "valid", "test"),
    eval_head: str | None = None,
    init_from: str | Path | None = None,
) -> ModelRecord:
    """Train a MACE model on a dataset version with mace-torch and register it.

    Parameters
    ----------
    stores
        The stores (dataset, registry, settings: ``home`` for run directories, ``torch_threads``).
    dataset_version
        Dataset version id (or a dataset name: its newest version).
    hyperparams
        Default :class:`MaceHyperParams` ``()``.
    name
        Model name (prefix of the model id and of the run directory).
    kind
        ``mace`` or ``finetune`` (set by :mod:`~mlipflow.training.finetune`).
    e0s
        Isolated-atom energies (symbol -> eV) overriding the labeler's / the least-squares fit.
    bootstrap_seed
        Train on a bootstrap resample of the training split drawn with this seed (committees).
    extra_train_atoms
        Labeled Atoms appended to the training file (mixed replay); identify them in ``key_parts``.
    extra_options
        More mace-torch options (fine-tuning: ``foundation_model``, ``multiheads_finetuning``, ...).
    key_parts
        More parts of the run key (e.g. checksums of the foundation and replay files).
    e0s_option
        Value for ``--E0s`` instead of the resolved dictionary (e.g. ``"foundation"``, ``"estimated"``).
    after_training
        Called after a successful run with the run result and files; returns extra record fields
        (merged into ``extra``), e.g. the forgetting measurement of a fine-tuning.
    register
        Store the model in the registry (otherwise the record is returned with an empty ``files``).
    divergence_factor
        Stop when the validation loss grows above this many times its best value.
    timeout
        Seconds (s) after which the run is killed; ``None``: no limit.
    on_epoch
        Callback per validation point (see :func:`~mlipflow.training.mace_runner.run_mace_train`).
    evaluate_splits
        Splits on which final errors per config type are computed and recorded.
    eval_head
        Head used for the final errors (default: mace's default choice, ``Default``).
    init_from
        Warm start: a registered model id (or a ``.model`` path) whose weights (and architecture) the training
        starts from, e.g. the same committee member of the previous active-learning iteration
        (mace-torch's naive fine-tuning, ``--foundation_model`` with ``--multiheads_finetuning=False``).

    Raises
    ------
    DataError
        The version holds a frame with a NaN/infinite label, or has no train/valid frames.
    TrainingError
        mace-torch failed, or a loss became NaN or diverged (nothing is registered).
    """
    hp = hyperparams or MaceHyperParams()
    registry = ModelRegistry(stores)
    dataset = Dataset(stores)
    version = dataset.get_version(dataset_version)
    extra_options = dict(extra_options or {})
    key_parts = dict(key_parts or {})
    warm_start = None
    if init_from is not None:
        from mlipflow.training.registry import sha256_file

        init_path = Path(init_from) if Path(str(init_from)).is_file() else registry.model_file(str(init_from))
        warm_start = str(init_from) if not Path(str(init_from)).is_file() else init_path.name
        extra_options.update(foundation_model=str(init_path), multiheads_finetuning=False)
        key_parts["warm_start"] = sha256_file(init_path)
    key = run_key(
        version=version.id, hp=hp.digest(), name=name, kind=kind, e0s=e0s, bootstrap=bootstrap_seed,
        options={k: v for k, v in extra_options.items() if k not in ("foundation_model", "pt_train_file")},
        e0s_option=e0s_option, **key_parts,
    )
    done = registry.find_by_run_key(key)
    if done is not None:
        logger.info("training run %s already registered model %s: not training again", key, done.id)
        return done
    run_dir = stores.settings.home / "training" / f"{name}-{key}"
    files = prepare_training_files(dataset, version.id, run_dir / "data", bootstrap_seed=bootstrap_seed,
                                   extra_train_atoms=extra_train_atoms)
    energies = {d["_id"]: d["energy"] for d in dataset.frames.find(
        {"_id": {"$in": list(version.isolated_atoms.values())}, "status": "labeled"}, {"energy": 1})}
    isolated = {el: energies[fid] for el, fid in version.isolated_atoms.items() if fid in energies}
    e0s_used, e0s_source = resolve_e0s(files.frames["train"], files.labeler, e0s, isolated)
    options = hp.mace_options()
    options.update(
        train_file=str(files.train), valid_file=str(files.valid),
        E0s=e0s_option or e0s_to_mace(e0s_used),
    )
    if files.test is not None:
        options["test_file"] = str(files.test)
    if len(files.frames["train"]) < hp.batch_size:
        raise TrainingError(
            f"batch_size {hp.batch_size} is larger than the {len(files.frames['train'])} training frames of "
            f"{version.id}; lower batch_size"
        )
    options.update(extra_options)
    result = run_mace_train(options, run_dir, name=name, seed=hp.seed, threads=stores.settings.torch_threads,
                            divergence_factor=divergence_factor, timeout=timeout, on_epoch=on_epoch)
    png = plot_curves(result.curves, run_dir / "curves.png", title=f"{name} on {version.id}")
    with _EVAL_LOCK:  # in-process model loading/evaluation is not thread-safe (torch.fx, e3nn)
        set_torch_threads(stores.settings.torch_threads)
        calc = load_calculator(result.model_path, device=hp.resolved_device, default_dtype=hp.default_dtype,
                               head=eval_head)
        errors = {s: evaluate_errors(calc, files.frames[s]) for s in evaluate_splits if files.frames.get(s)}
        heads = list(getattr(calc, "available_heads", ["Default"]))
    extra: dict[str, Any] = {
        "run_dir": str(run_dir), "curves_png": str(png), "counts": files.counts, "labeler": files.labeler.describe(),
        "bootstrap_seed": bootstrap_seed, "restarts": result.curves.restarts, "versions": _versions(),
        "mace_options": {k: v for k, v in options.items() if not str(k).endswith("_file")},
    }
    if after_training is not None:
        with _EVAL_LOCK:
            extra.update(after_training(result, files))
    if e0s_option:
        e0s_source = e0s_option
    fields = dict(
        hyperparams=hp.model_dump(mode="json"), dataset_version=version.id, e0s=e0s_used, e0s_source=e0s_source,
        curves=result.curves.model_dump(mode="json"), errors=errors, wall_time=result.wall_time,
        device=hp.resolved_device,
        heads=heads, run_key=key, extra=extra, kept_epoch=result.kept_epoch, kept_rule=result.kept_rule,
        warm_start=warm_start,
    )
    valid = errors.get("valid", {}).get("all", {})
    logger.info("trained %s on %s in %.0f s (kept epoch %s): valid RMSE E %.2f meV/atom, F %.1f meV/Å", name,
                version.id, result.wall_time, "?" if result.kept_epoch is None else result.kept_epoch + 1,
                1e3 * valid.get("rmse_e_per_atom", float("nan")), 1e3 * valid.get("rmse_f", float("nan")))
    if not register:
        from mlipflow.training.registry import sha256_file

        checksum = sha256_file(result.model_path)
        return ModelRecord(id=f"{name}-{checksum[:12]}", name=name, kind=kind, checksum=checksum, **fields)
    return registry.register(result.model_path, name=name, kind=kind, compiled_path=result.compiled_path, **fields)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for package in ("mace-torch", "torch", "e3nn", "mlipflow"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:  # pragma: no cover
            out[package] = "unknown"
    return out
