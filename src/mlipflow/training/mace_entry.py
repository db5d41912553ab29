"""Entry point of the training subprocess: set torch's thread count, then hand over to mace-torch.

Run as ``python -m mlipflow.training.mace_entry <mace_run_train arguments>``; everything after the module
name is mace-torch's own command line (``mace.cli.run_train.main``).  The thread count comes from
``MLIPFLOW_TORCH_THREADS`` (default 1; see ``MlipflowSettings.torch_threads``).
"""

from __future__ import annotations

import os


def main() -> None:
    """Set ``torch.set_num_threads`` from ``MLIPFLOW_TORCH_THREADS`` and run ``mace.cli.run_train.main``."""
    # trusted files only (e3nn's shipped constants, our own checkpoints): see mlipflow/__init__.py
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("MLIPFLOW_TORCH_THREADS", "1"))))
    from mace.cli.run_train import main as mace_run_train

    mace_run_train()


if __name__ == "__main__":
    main()
