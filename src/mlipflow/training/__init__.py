"""Training: MACE from scratch, committees, fine-tuning a foundation model with replay, the model registry.

mace-torch's own training entry point (``mace.cli.run_train``, tested with mace-torch 0.3.16) does the
training, in a child process with a stable run directory so that a killed job resumes from its checkpoint.

Names are loaded on first use (see ``mlipflow._lazy``).
"""

from __future__ import annotations

from mlipflow._lazy import lazy_exports

_EXPORTS = {
    "CommitteeCalculator": "mlipflow.training.committee",
    "train_committee": "mlipflow.training.committee",
    "EpochPoint": "mlipflow.training.curves",
    "TrainingCurves": "mlipflow.training.curves",
    "parse_results_file": "mlipflow.training.curves",
    "plot_curves": "mlipflow.training.curves",
    "finetune_model": "mlipflow.training.finetune",
    "measure_forgetting": "mlipflow.training.finetune",
    "MaceHyperParams": "mlipflow.training.hyperparams",
    "CommitteeTrainMaker": "mlipflow.training.jobs",
    "FineTuneMaker": "mlipflow.training.jobs",
    "MaceTrainMaker": "mlipflow.training.jobs",
    "ModelRecord": "mlipflow.training.registry",
    "ModelRegistry": "mlipflow.training.registry",
    "evaluate_errors": "mlipflow.training.trainer",
    "load_calculator": "mlipflow.training.trainer",
    "prepare_training_files": "mlipflow.training.trainer",
    "resolve_e0s": "mlipflow.training.trainer",
    "train_model": "mlipflow.training.trainer",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
