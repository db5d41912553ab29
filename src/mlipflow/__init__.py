"""mlipflow: workflows that build MACE interatomic potentials for battery interfaces."""

from __future__ import annotations

import os

# e3nn 0.4.4 (pinned by mace-torch) loads its own shipped ``constants.pt`` with ``torch.load``; under
# torch >= 2.6 that defaults to ``weights_only=True`` and fails.  The file is trusted (it ships inside
# the e3nn wheel), so we opt out here, once, for the whole package.  ``import mace`` does the same.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

__version__ = "0.1.0"

from mlipflow.errors import MlipflowError

__all__ = ["MlipflowError", "__version__"]
