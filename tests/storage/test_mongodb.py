"""The production path against a real MongoDB (``MLIPFLOW_TEST_MONGODB_URI``); skipped without one."""

from __future__ import annotations

import pytest
from ase.io import write
from jobflow import Flow, job

from mlipflow.data import Dataset, LabelerInfo, export_extxyz, import_file
from mlipflow.execution import run_worker, submit
from mlipflow.storage import EmbeddedMongoStore

pytestmark = pytest.mark.mongodb


@job(data="values")
def _values(n: int) -> dict:
    return {"values": list(range(n)), "n": n}


def test_stores_are_real_mongodb(mongodb_stores):
    assert not isinstance(mongodb_stores.jobstore.docs_store, EmbeddedMongoStore)
    assert type(mongodb_stores.db).__module__.startswith("pymongo")


def test_dataset_round_trip_on_mongodb(mongodb_stores, tmp_path, lj_li_images):
    path = tmp_path / "f.xyz"
    write(path, lj_li_images(3), format="extxyz")
    dataset = Dataset(mongodb_stores)
    assert len(import_file(dataset, path, LabelerInfo(name="lj", kind="surrogate")).inserted) == 3
    version = dataset.create_version("li")
    assert export_extxyz(dataset, version.id, tmp_path / "o.xyz") == 3


def test_jobflow_through_fireworks_on_mongodb(mongodb_stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mongodb_stores.launchpad.reset("", require_password=False)
    j = _values(1_000_000)
    submit(Flow([j]), mongodb_stores)
    run_worker(settings=mongodb_stores.settings)
    assert mongodb_stores.jobstore.get_output(j.uuid, load=True)["n"] == 1_000_000
