"""Training: MACE from scratch, committees, fine-tuning a foundation model with replay, the model registry.

mace-torch's own training entry point (``mace.cli.run_train``, tested with mace-torch 0.3.16) does the
training, in a child process with a stable run directory so that a killed job resumes from its checkpoint.
"""

from mlipflow.training.committee import CommitteeCalculator, train_committee
from mlipflow.training.curves import EpochPoint, TrainingCurves, parse_results_file, plot_curves
from mlipflow.training.finetune import finetune_model, measure_forgetting
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.jobs import CommitteeTrainMaker, FineTuneMaker, MaceTrainMaker
from mlipflow.training.registry import ModelRecord, ModelRegistry
from mlipflow.training.trainer import evaluate_errors, load_calculator, prepare_training_files, resolve_e0s, train_model

__all__ = [
    "CommitteeCalculator",
    "CommitteeTrainMaker",
    "EpochPoint",
    "FineTuneMaker",
    "MaceHyperParams",
    "MaceTrainMaker",
    "ModelRecord",
    "ModelRegistry",
    "TrainingCurves",
    "evaluate_errors",
    "finetune_model",
    "load_calculator",
    "measure_forgetting",
    "parse_results_file",
    "plot_curves",
    "prepare_training_files",
    "resolve_e0s",
    "train_committee",
    "train_model",
]
