"""Fixtures of the structure tests: the CHGNet surrogate (loaded once per session, one thread)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def chgnet():
    """CHGNet 0.3.0 as an ASE calculator (weights ship in its wheel); skipped when chgnet is not installed."""
    pytest.importorskip("chgnet")
    import torch

    from mlipflow.benchmark.baselines import calculator_from_spec

    calc = calculator_from_spec("chgnet")
    torch.set_num_threads(1)
    return calc
