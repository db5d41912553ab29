"""Shared fixtures: every test gets its own embedded store under a temporary MLIPFLOW_HOME."""

from __future__ import annotations

import os

import pytest

from mlipflow.settings import load_settings
from mlipflow.storage import Stores, get_stores

MONGODB_URI_ENV = "MLIPFLOW_TEST_MONGODB_URI"


@pytest.fixture(autouse=True)
def mlipflow_home(tmp_path, monkeypatch):
    """An empty MLIPFLOW_HOME per test; no config file or URI leaks in from the user's environment."""
    home = tmp_path / "mlipflow_home"
    monkeypatch.setenv("MLIPFLOW_HOME", str(home))
    monkeypatch.delenv("MLIPFLOW_CONFIG", raising=False)
    monkeypatch.delenv("MLIPFLOW_MONGODB_URI", raising=False)
    return home


@pytest.fixture
def stores(mlipflow_home) -> Stores:
    """The embedded stores of this test's MLIPFLOW_HOME."""
    return get_stores(load_settings())


@pytest.fixture
def mongodb_stores(request) -> Stores:
    """Stores on a real MongoDB server (``MLIPFLOW_TEST_MONGODB_URI``); skipped when it is not set."""
    uri = os.environ.get(MONGODB_URI_ENV)
    if not uri:
        pytest.skip(f"{MONGODB_URI_ENV} is not set: no real MongoDB server to test against")
    database = f"mlipflow_test_{request.node.name[:40]}".replace("[", "_").replace("]", "_")
    settings = load_settings(mongodb_uri=uri, database=database)
    stores = get_stores(settings)
    yield stores
    stores.db.client.drop_database(database)


@pytest.fixture
def lj_li_images():
    """Factory of rattled bcc Li cells labeled by ASE's Lennard-Jones calculator (REF_* keys).

    A real (cheap) calculation, so that energies, forces and stress are consistent with each other.
    """
    import numpy as np
    from ase.build import bulk
    from ase.calculators.lj import LennardJones

    def make(n: int = 5, seed: int = 0, config_type: str = "rattled"):
        rng = np.random.default_rng(seed)
        images = []
        for _ in range(n):
            atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat((2, 2, 2))
            atoms.positions += rng.normal(0.0, 0.08, atoms.positions.shape)
            atoms.calc = LennardJones(sigma=2.7, epsilon=0.05, rc=6.0)
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            stress = atoms.get_stress(voigt=False)
            atoms.calc = None
            atoms.info.update(REF_energy=energy, REF_stress=stress.reshape(9), config_type=config_type)
            atoms.arrays["REF_forces"] = forces
            images.append(atoms)
        return images

    return make
