"""Fixtures of the training tests: small toy-labeled datasets and one tiny MACE model shared by the session.

Training runs in a child process (mace-torch); each tiny training takes about 30-60 s on a busy 2-core CPU,
so the model trained once here is reused by the registry, CLI, curves and committee tests.
"""

from __future__ import annotations

import pytest

from mlipflow.data import Dataset
from mlipflow.settings import load_settings
from mlipflow.storage import get_stores
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.synthetic import make_toy_frames
from mlipflow.training.trainer import train_model

#: the hyper-parameters of the shared tiny model (12 epochs, float64, 16 channels, L=0)
TINY = MaceHyperParams.tiny(max_num_epochs=12, seed=7)


def _make_version(stores, chemistry: str = "Li2O", n: int = 60, seed: int = 1, name: str = "toy",
                 fractions: dict | None = None) -> str:
    """Add ``n`` toy-labeled frames of one chemistry to the store and freeze them into a version."""
    dataset = Dataset(stores)
    frames = make_toy_frames(n, chemistry, seed=seed)
    dataset.add_frames(frames)
    version = dataset.create_version(name, frame_ids=[f.content_hash for f in frames],
                                     fractions=fractions or {"train": 0.7, "valid": 0.2, "test": 0.1})
    return version.id


@pytest.fixture
def make_version():
    """``make_version(stores, chemistry="Li2O", n=60, seed=1, name="toy", fractions=None) -> version id``."""
    return _make_version


@pytest.fixture
def tiny():
    """The hyper-parameters of the shared tiny model."""
    return TINY


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory):
    return tmp_path_factory.mktemp("training_home")


@pytest.fixture(scope="session")
def trained(shared_home):
    """(stores, version id, record) of one tiny MACE trained on 60 toy Li2O frames, shared by the session."""
    stores = get_stores(load_settings(home=shared_home))
    version = _make_version(stores)
    record = train_model(stores, version, TINY, name="tiny")
    return stores, version, record
