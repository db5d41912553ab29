"""Fine-tune a foundation MACE model given by path (nothing is downloaded), with or without replay.

Three modes, all through mace-torch's own training entry point:

* ``plain``: naive full fine-tuning on the new data (``--foundation_model=<path> --multiheads_finetuning=False``).
* ``replay``: mace-torch's multi-head fine-tuning with a replay set of pre-training frames
  (``--multiheads_finetuning=True --pt_train_file=<local extxyz> --force_mh_ft_lr=True``).  The model gets
  two heads, ``pt_head`` (kept on the replay data) and ``Default`` (the new data).  mace-torch refuses
  ``--E0s=average`` in this mode and ignores ``--num_samples_pt`` for a local file (measured with 0.3.16).
* ``mixed``: single-head fine-tuning on the new training frames plus a fixed random sample of replay frames,
  ``replay_ratio`` replay frames per new frame, drawn once with ``seed`` (mace-torch's CLI has no
  per-epoch resampling; the mixing ratio is stated in the registry record).  This is the replay of FIRE
  (S004) in its simplest form; use it when replay and task labels come from the same labeler.

Forgetting is measured on a hold-out set from the foundation's domain: the errors of the foundation
before, and of the fine-tuned model after (its ``Default`` head, plus ``pt_head`` in ``replay`` mode),
recorded under ``extra["forgetting"]`` with the after/before ratios.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ase import Atoms
from ase.io import read

from mlipflow.data import Dataset
from mlipflow.data.io import frame_to_extxyz_atoms
from mlipflow.errors import TrainingError
from mlipflow.storage import Stores
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.mace_runner import MaceRunResult
from mlipflow.training.registry import ModelRecord, ModelRegistry, sha256_file
from mlipflow.training.trainer import TrainingFiles, check_frame, evaluate_errors, load_calculator, train_model

logger = logging.getLogger(__name__)

FineTuneMode = Literal["plain", "replay", "mixed"]


def resolve_model_file(stores: Stores, model: str | Path) -> Path:
    """A ``.model`` path as given, or the cached file of a registered model id."""
    path = Path(model).expanduser()
    if path.is_file():
        return path.absolute()
    try:
        return ModelRegistry(stores).model_file(str(model))
    except Exception as exc:
        raise TrainingError(
            f"foundation model {model!r} is neither a file nor a registered model id; nothing is downloaded: "
            "give the path of a local .model file (e.g. a MACE-MP file copied to this machine)"
        ) from exc


def version_atoms(stores: Stores, version_id: str, split: str | None = None) -> list[Atoms]:
    """Labeled frames of a dataset version (or one split) as Atoms with mace-torch's ``REF_*`` keys."""
    atoms = []
    for frame, s in Dataset(stores).version_frames(version_id, split):  # type: ignore[arg-type]
        check_frame(frame)
        atoms.append(frame_to_extxyz_atoms(frame, s))
    if not atoms:
        raise TrainingError(f"dataset version {version_id} has no frames in split {split!r}")
    return atoms


def _load_set(stores: Stores, version: str | None, path: str | Path | None, split: str | None) -> list[Atoms]:
    if path is not None:
        return list(read(str(path), index=":", format="extxyz"))
    if version is not None:
        return version_atoms(stores, version, split)
    return []


def finetune_model(
    stores: Stores,
    dataset_version: str,
    foundation: str | Path,
    *,
    mode: FineTuneMode = "replay",
    hyperparams: MaceHyperParams | None = None,
    name: str | None = None,
    replay_version: str | None = None,
    replay_file: str | Path | None = None,
    replay_ratio: float = 1.0,
    holdout_version: str | None = None,
    holdout_file: str | Path | None = None,
    holdout_split: str | None = "test",
    foundation_head: str | None = None,
    **train_kwargs: Any,
) -> ModelRecord:
    """Fine-tune a local foundation model on a dataset version and register the result (kind ``finetune``).

    Parameters
    ----------
    stores
        The stores.
    dataset_version
        The new (task) data.
    foundation
        Path of a mace-torch ``.model`` file, or the id of a registered model.
    mode
        ``plain``, ``replay`` (multi-head) or ``mixed`` (single head, replay frames mixed in).
    hyperparams
        Learning rate, epochs, batch size, seed, device, dtype... (the architecture and ``r_max`` come
        from the foundation model; mace-torch ignores those fields when fine-tuning).
    name
        Model name (default ``finetune-<mode>``).
    replay_version, replay_file
        Replay (pre-training) frames: a dataset version (its ``train`` split) or an extxyz file with
        ``REF_energy``/``REF_forces``.  Required for ``replay`` and ``mixed``.
    replay_ratio
        ``mixed`` only: replay frames per new training frame (drawn without replacement when possible).
    holdout_version, holdout_file, holdout_split
        Foundation-domain hold-out for the forgetting measurement (a version's ``holdout_split``, or a file).
    foundation_head
        Head of the foundation to evaluate before fine-tuning (multi-head foundations).
    **train_kwargs
        Passed to :func:`~mlipflow.training.trainer.train_model` (``timeout``, ``on_epoch``, ``e0s``, ...).

    Raises
    ------
    TrainingError
        The foundation file is missing, a replay mode has no replay frames, or training fails.
    """
    hp = hyperparams or MaceHyperParams()
    name = name or f"finetune-{mode}"
    foundation_path = resolve_model_file(stores, foundation)
    key_parts: dict[str, Any] = {"foundation": sha256_file(foundation_path), "mode": mode}
    options: dict[str, Any] = {"foundation_model": str(foundation_path)}
    extra_train_atoms: list[Atoms] | None = None
    replay = _load_set(stores, replay_version, replay_file, "train") if mode != "plain" else []
    if mode != "plain" and not replay:
        raise TrainingError(f"fine-tuning mode {mode!r} needs replay frames: give replay_version or replay_file")
    if mode == "plain":
        options["multiheads_finetuning"] = False
    elif mode == "replay":
        replay_path = stores.settings.home / "training" / "replay" / f"replay-{key_parts['foundation'][:12]}.xyz"
        replay_path.parent.mkdir(parents=True, exist_ok=True)
        from ase.io import write

        write(replay_path, replay, format="extxyz", write_results=False)
        options.update(multiheads_finetuning=True, pt_train_file=str(replay_path), force_mh_ft_lr=True)
        key_parts["replay"] = sha256_file(replay_path)
    elif mode == "mixed":
        options["multiheads_finetuning"] = False
        n_train = sum(1 for _ in Dataset(stores).version_frames(dataset_version, "train"))
        n_replay = max(1, round(replay_ratio * n_train))
        rng = np.random.default_rng(hp.seed)
        idx = rng.choice(len(replay), n_replay, replace=n_replay > len(replay))
        extra_train_atoms = [replay[i] for i in idx]
        for atoms in extra_train_atoms:
            atoms.info["config_type"] = f"replay_{atoms.info.get('config_type', 'Default')}"
        key_parts.update(replay=[str(a.info.get("frame_id", i)) for i, a in zip(idx, extra_train_atoms, strict=True)],
                         replay_ratio=replay_ratio)
    else:
        raise TrainingError(f"unknown fine-tuning mode {mode!r}; use 'plain', 'replay' or 'mixed'")
    holdout = _load_set(stores, holdout_version, holdout_file, holdout_split)

    def after(result: MaceRunResult, files: TrainingFiles) -> dict[str, Any]:
        info: dict[str, Any] = {
            "foundation": {"path": str(foundation_path), "checksum": key_parts["foundation"], "head": foundation_head},
            "finetune_mode": mode,
            "replay": {"n_frames": len(replay), "ratio": replay_ratio if mode == "mixed" else None,
                       "source": replay_version or (str(replay_file) if replay_file else None)},
        }
        if holdout:
            info["forgetting"] = measure_forgetting(foundation_path, result.model_path, holdout, hp,
                                                    foundation_head=foundation_head, multihead=mode == "replay")
        return info

    if mode == "replay" and "e0s" not in train_kwargs:
        # mace-torch refuses "average" here; "estimated" fits the new head's E0s to the foundation's predictions
        train_kwargs.setdefault("e0s_option", "estimated")
    return train_model(stores, dataset_version, hp, name=name, kind="finetune", extra_options=options,
                       key_parts=key_parts, extra_train_atoms=extra_train_atoms, after_training=after, **train_kwargs)


def measure_forgetting(
    foundation_path: str | Path,
    model_path: str | Path,
    holdout: list[Atoms],
    hyperparams: MaceHyperParams,
    *,
    foundation_head: str | None = None,
    multihead: bool = False,
) -> dict[str, Any]:
    """Errors on a foundation-domain hold-out before (foundation) and after (fine-tuned model).

    Returns
    -------
    dict
        ``before``, ``after`` (head ``Default``) and, for multi-head models, ``after_pt_head``: each
        config type -> {``rmse_e_per_atom`` eV/atom, ``rmse_f`` eV/Å, ``n_frames``}; plus
        ``ratio_f``/``ratio_e`` (after / before on ``all``, >1 means forgotten) and ``n_frames``.
    """
    dtype = hyperparams.default_dtype
    before = evaluate_errors(load_calculator(foundation_path, device=hyperparams.resolved_device, default_dtype=dtype,
                                             head=foundation_head), holdout)
    after = evaluate_errors(load_calculator(model_path, device=hyperparams.resolved_device, default_dtype=dtype,
                                            head="Default"), holdout)
    out: dict[str, Any] = {"before": before, "after": after, "n_frames": len(holdout)}
    out["ratio_f"] = after["all"]["rmse_f"] / max(before["all"]["rmse_f"], 1e-12)
    out["ratio_e"] = after["all"]["rmse_e_per_atom"] / max(before["all"]["rmse_e_per_atom"], 1e-12)
    if multihead:
        pt = evaluate_errors(load_calculator(model_path, device=hyperparams.resolved_device, default_dtype=dtype,
                                             head="pt_head"), holdout)
        out["after_pt_head"] = pt
        out["ratio_f_pt_head"] = pt["all"]["rmse_f"] / max(before["all"]["rmse_f"], 1e-12)
    logger.info("forgetting on %d foundation-domain frames: force RMSE %.1f -> %.1f meV/Å (x%.2f)", len(holdout),
                1e3 * before["all"]["rmse_f"], 1e3 * after["all"]["rmse_f"], out["ratio_f"])
    return out
