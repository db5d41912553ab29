"""The model registry's own rules (no training needed: a registered file is stored by its checksum)."""

from __future__ import annotations

import pytest

from mlipflow.errors import TrainingError
from mlipflow.training.registry import ModelRegistry


def test_a_committee_names_only_members_of_its_own_dataset_version(stores, tmp_path):
    registry = ModelRegistry(stores)
    models = {}
    for name, version in (("a", "v1"), ("b", "v1"), ("c", "v2")):
        path = tmp_path / f"{name}.model"
        path.write_bytes(f"weights of {name}".encode())
        models[name] = registry.register(path, name=name, dataset_version=version).id
    committee = registry.register_committee([models["a"], models["b"]], name="ab")
    assert committee.dataset_version == "v1" and committee.members == [models["a"], models["b"]]
    with pytest.raises(TrainingError, match=r"would mix dataset versions \(a-\w+ on v1, c-\w+ on v2\)"):
        registry.register_committee([models["a"], models["c"]], name="ac")
    with pytest.raises(TrainingError, match="committee: v2"):
        registry.register_committee([models["a"], models["b"]], name="ab2", dataset_version="v2")
    assert stores.models.count_documents({"kind": "committee"}) == 1  # the refused ones left no record
