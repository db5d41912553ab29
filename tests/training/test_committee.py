"""A 3-model committee: larger force spread far from the training data than near it."""

from __future__ import annotations

import numpy as np

from mlipflow.training.committee import CommitteeCalculator, train_committee
from mlipflow.training.registry import ModelRegistry
from mlipflow.training.synthetic import make_toy_atoms


def _max_spreads(calc, frames):
    out = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        atoms.get_potential_energy()
        out.append(calc.results["max_forces_spread"])
        assert calc.results["forces_spread"].shape == (len(atoms),)
        assert calc.results["forces_committee"].shape == (3, len(atoms), 3)
    return np.array(out)


def test_committee_spread_grows_far_from_training_data(trained, tiny):
    stores, version, single = trained
    committee = train_committee(stores, version, tiny, n_models=3, member_name="tiny", parallel=2)
    assert committee.kind == "committee" and len(committee.members) == 3
    assert committee.members[0] == single.id  # the member with the same seed was not trained again
    assert ModelRegistry(stores).get(committee.id).extra["seeds"] == [7, 8, 9]
    calc = CommitteeCalculator.from_registry(stores, committee.id)
    near = _max_spreads(calc, make_toy_atoms(6, "Li2O", seed=101))  # same distribution as the training set
    far = _max_spreads(calc, make_toy_atoms(6, "Li2O", rattle=0.35, strain=0.12, seed=102))
    assert np.mean(far) > np.mean(near), f"spread far {far} vs near {near} (eV/Å)"
    mean_forces = calc.results["forces"]
    assert np.allclose(mean_forces, calc.results["forces_committee"].mean(axis=0))
