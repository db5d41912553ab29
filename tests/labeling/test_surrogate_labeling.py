"""Surrogate labeling through the ledger: never twice, kill-safe, failures recorded, filters applied."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.data import Dataset
from mlipflow.errors import ConfigError
from mlipflow.execution import run_locally
from mlipflow.labeling import (
    LabelLedger,
    LabelMaker,
    LabelSummary,
    SanityFilter,
    SurrogateLabeler,
    label_structures,
)

LJ = {"sigma": 2.7, "epsilon": 0.05, "rc": 5.0}


def li_cells(n: int, seed: int = 0, family: str = "bulk"):
    """n rattled 16-atom bcc Li cells with generator provenance."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat((2, 2, 2))
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        s = AseAtomsAdaptor.get_structure(atoms)
        s.properties["provenance"] = {
            "family": family,
            "generator": "rattle",
            "parameters": {"sigma": 0.05, "seed": seed, "index": i},
            "parent": "Li-bcc",
        }
        out.append(s)
    return out


class Counter:
    """A calculator factory that counts calculations (and can fail or die on chosen calls)."""

    def __init__(self, fail_on: set[int] | None = None):
        self.calls = 0
        self.fail_on = fail_on or set()
        self.__name__ = "counting-lj"

    def __call__(self, **kwargs):
        counter = self

        class CountingLJ(LennardJones):
            def calculate(self, atoms=None, properties=("energy",), system_changes=()):
                counter.calls += 1
                if counter.calls in counter.fail_on:
                    raise RuntimeError(f"injected failure on call {counter.calls}")
                super().calculate(atoms, properties, system_changes)

        return CountingLJ(**kwargs)


def lj_labeler(factory=None) -> SurrogateLabeler:
    return SurrogateLabeler(
        calculator=factory or "lj", calculator_kwargs=LJ, name="lj-li", version="test-1", torch_threads=None
    )


def test_twenty_frames_labeled_then_relabeling_costs_no_call(stores):
    counter = Counter()
    structures = li_cells(20)
    first = label_structures(structures, lj_labeler(counter), stores=stores)
    assert first.counts == {"labeled": 20}
    assert counter.calls == 20  # one calculate() per frame: energy, forces and stress together

    again = label_structures(structures, lj_labeler(counter), stores=stores)
    assert again.counts == {"reused": 20}
    assert again.calculator_calls == 0 and counter.calls == 20
    assert again.frame_ids == first.frame_ids

    dataset = Dataset(stores)
    frame = dataset.get(first.frame_ids[3])
    assert frame.status == "labeled" and frame.labeler.kind == "surrogate"
    assert frame.labeler.describe() == "lj-li test-1 (surrogate)"
    assert frame.provenance.family == "bulk" and frame.provenance.generator == "rattle"
    assert frame.provenance.parameters["index"] == 3
    assert "provenance" not in frame.structure.properties
    # labels match a direct evaluation (stress stored in GPa, ASE sign convention)
    atoms = AseAtomsAdaptor.get_atoms(structures[3])
    atoms.calc = LennardJones(**LJ)
    assert frame.energy == pytest.approx(atoms.get_potential_energy())
    np.testing.assert_allclose(frame.forces, atoms.get_forces(), atol=1e-10)
    np.testing.assert_allclose(
        frame.to_atoms().get_stress(voigt=False), atoms.get_stress(voigt=False), atol=1e-10
    )
    version = dataset.create_version("li-lj")
    assert version.size == 20 and version.labelers == {"lj-li test-1 (surrogate)": 20}


def test_other_settings_are_another_label(stores):
    structures = li_cells(3)
    a = label_structures(structures, lj_labeler(), stores=stores)
    other = SurrogateLabeler(calculator="lj", calculator_kwargs={**LJ, "epsilon": 0.06}, name="lj-li")
    b = label_structures(structures, other, stores=stores)
    assert b.counts == {"labeled": 3}
    assert set(a.frame_ids).isdisjoint(b.frame_ids)


def test_failing_calculator_is_recorded_and_batch_goes_on(stores):
    # call 3 fails, and its retry (call 4) fails too: frame 2 ends failed with 2 attempts; call 6 fails once
    counter = Counter(fail_on={3, 4, 6})
    structures = li_cells(6, seed=1)
    summary = label_structures(structures, lj_labeler(counter), stores=stores, max_attempts=2)
    assert summary.counts == {"labeled": 5, "failed": 1}
    assert counter.calls == 8
    doc = stores.frames.find_one({"_id": summary.frame_ids[2]})
    assert doc["status"] == "failed" and doc["attempts"] == 2
    assert "injected failure on call 4" in doc["failure"]
    assert [e["reason"] for e in doc["failure_log"]] == [
        "lj-li: calculation failed: RuntimeError: injected failure on call 3",
        "lj-li: calculation failed: RuntimeError: injected failure on call 4",
    ]
    retried = stores.frames.find_one({"_id": summary.frame_ids[4]})
    assert retried["status"] == "labeled" and retried["attempts"] == 2 and len(retried["failure_log"]) == 1
    # failed frames never enter a dataset version; a rerun does not retry an exhausted frame
    assert Dataset(stores).create_version("x").size == 5
    rerun = label_structures(structures, lj_labeler(counter), stores=stores, max_attempts=2)
    assert rerun.counts == {"reused": 5, "failed": 1} and rerun.calculator_calls == 0
    # with more attempts allowed, it is retried
    more = label_structures(structures, lj_labeler(counter), stores=stores, max_attempts=3)
    assert more.counts == {"reused": 5, "labeled": 1}


def test_sanity_filters_keep_the_label_with_its_reason(stores):
    structures = li_cells(10, seed=2)
    squeezed = structures[-1].copy()
    squeezed.translate_sites([0], [1.6, 0, 0], frac_coords=False)  # two Li atoms ~1.4 Å apart
    structures[-1] = squeezed
    summary = label_structures(
        structures,
        lj_labeler(),
        stores=stores,
        sanity_filter=SanityFilter(max_force=5.0, require_stress=True),
    )
    assert summary.counts == {"labeled": 9, "filtered": 1}
    doc = stores.frames.find_one({"_id": summary.frame_ids[-1]})
    assert doc["status"] == "filtered" and "max_force" in doc["failure"] and doc["energy"] is not None
    no_stress = SurrogateLabeler(calculator="lj", calculator_kwargs=LJ, name="lj-li", compute_stress=False)
    s2 = label_structures(
        structures[:2], no_stress, stores=stores, sanity_filter=SanityFilter(require_stress=True)
    )
    assert s2.counts == {"filtered": 2}
    assert "stress is required" in stores.frames.find_one({"_id": s2.frame_ids[0]})["failure"]


def test_energy_outlier_against_family():
    from mlipflow.labeling import FamilyEnergyStats, LabelResult

    stats = FamilyEnergyStats()
    for e in np.linspace(-1.90, -1.88, 10):
        stats.add("bulk", e)
    f = SanityFilter(max_energy_deviation=0.5, min_family_size=8)
    ok = LabelResult(energy=-1.89 * 4, forces=np.zeros((4, 3)))
    bad = LabelResult(energy=+2.0 * 4, forces=np.zeros((4, 3)))
    nan = LabelResult(energy=float("nan"), forces=np.zeros((4, 3)))
    assert f.check(ok, 4, "bulk", stats) is None
    assert "from the median" in f.check(bad, 4, "bulk", stats)
    assert f.check(bad, 4, "slab", stats) is None  # no slab labels yet: no reference
    assert "finite" in f.check(nan, 4, "bulk", stats)


def test_running_frame_under_live_claim_is_not_started_again(stores):
    labeler = lj_labeler()
    structures = li_cells(2, seed=3)
    ledger = LabelLedger(stores.frames, labeler.info)
    frame_id, _ = ledger.register(structures[0])
    # another live worker (this process's parent pid is alive) holds the frame
    stores.frames.update_one(
        {"_id": frame_id},
        {
            "$set": {
                "status": "running",
                "claim": {"token": "t", "host": "elsewhere", "pid": 1, "expires": 1e12},
            }
        },
    )
    summary = label_structures(structures, labeler, stores=stores)
    assert summary.counts == {"in_flight": 1, "labeled": 1}
    # an expired claim may be taken over
    stores.frames.update_one({"_id": frame_id}, {"$set": {"claim.expires": 0.0}})
    assert label_structures(structures, labeler, stores=stores).counts == {"labeled": 1, "reused": 1}


KILL_SCRIPT = """
import os, signal, sys
from ase.calculators.lj import LennardJones

N = 0

class DiesAfterSeven(LennardJones):
    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        global N
        N += 1
        if N == 8:
            os.kill(os.getpid(), signal.SIGKILL)  # a killed worker: nothing after this line runs
        super().calculate(atoms, properties, system_changes)

def factory(**kwargs):
    return DiesAfterSeven(**kwargs)

if __name__ == "__main__":
    import pickle
    from mlipflow.labeling import SurrogateLabeler, label_structures
    structures = pickle.load(open(sys.argv[1], "rb"))
    labeler = SurrogateLabeler(calculator="killer:factory", calculator_kwargs={kwargs}, name="lj-li",
                               version="test-1", torch_threads=None)
    label_structures(structures, labeler)
"""


def test_batch_killed_after_seven_keeps_seven_and_finishes_the_rest(stores, tmp_path):
    import pickle

    structures = li_cells(20, seed=4)
    (tmp_path / "structures.pkl").write_bytes(pickle.dumps(structures))
    (tmp_path / "killer.py").write_text(textwrap.dedent(KILL_SCRIPT).replace("{kwargs}", repr(LJ)))
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "killer.py"), str(tmp_path / "structures.pkl")], env=env, cwd=tmp_path
    )
    assert proc.returncode == -signal.SIGKILL

    statuses = [d["status"] for d in stores.frames.find({})]
    assert sorted(statuses) == ["labeled"] * 7 + ["running"]  # the 8th was claimed when the worker died

    counter = Counter()
    summary = label_structures(structures, lj_labeler(counter), stores=stores)
    assert summary.counts == {"reused": 7, "labeled": 13}
    assert counter.calls == 13
    assert stores.frames.count_documents({"status": "labeled"}) == 20


COUNTING_MODULE = """
from ase.calculators.lj import LennardJones

CALLS = []

class CountingLJ(LennardJones):
    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        CALLS.append(len(atoms))
        super().calculate(atoms, properties, system_changes)
"""


def test_label_maker_flow_in_batches(stores, tmp_path, monkeypatch):
    import importlib

    (tmp_path / "mlipflow_counting_calc.py").write_text(COUNTING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    counting = importlib.import_module("mlipflow_counting_calc")
    labeler = SurrogateLabeler(
        calculator="mlipflow_counting_calc:CountingLJ", calculator_kwargs=LJ, name="lj-li", version="test-1"
    )
    structures = li_cells(10, seed=5)
    maker = LabelMaker(labeler=labeler, batch_size=4)
    flow = maker.make(structures)
    assert len(flow.jobs) == 4  # 3 batches + summary
    responses = run_locally(flow, stores=stores, root_dir=tmp_path)
    summary = responses[flow.jobs[-1].uuid][1].output
    assert isinstance(summary, LabelSummary)
    assert summary.counts == {"labeled": 10} and len(summary.frame_ids) == 10
    assert len(counting.CALLS) == 10
    # the same flow again: every frame reused, no calculation
    again = run_locally(maker.make(structures), stores=stores, root_dir=tmp_path)
    assert len(counting.CALLS) == 10
    assert any(
        r[1].output.counts == {"reused": 10} for r in again.values() if isinstance(r[1].output, LabelSummary)
    )
    # relabel by frame ids with another labeler: structures and provenance come from the store
    other = SurrogateLabeler(calculator="lj", calculator_kwargs={**LJ, "epsilon": 0.06}, name="lj-li-2")
    flow2 = LabelMaker(labeler=other, batch_size=5).make(frame_ids=summary.frame_ids)
    out = run_locally(flow2, stores=stores, root_dir=tmp_path)
    s2 = out[flow2.jobs[-1].uuid][1].output
    assert s2.counts == {"labeled": 10}
    assert Dataset(stores).get(s2.frame_ids[0]).provenance.family == "bulk"


def test_unknown_calculator_and_unserialisable_callable():
    with pytest.raises(ConfigError, match="unknown surrogate calculator"):
        SurrogateLabeler(calculator="nope")
    with pytest.raises(ConfigError, match="cannot be serialised"):
        lj_labeler(Counter()).as_dict()
    d = lj_labeler().as_dict()
    assert SurrogateLabeler.from_dict(d).info == lj_labeler().info


def test_chgnet_labels_a_small_li_cell_offline(stores):
    pytest.importorskip("chgnet")
    labeler = SurrogateLabeler(calculator="chgnet")
    assert labeler.info.kind == "surrogate" and labeler.info.version  # the chgnet package version
    cells = []
    for a in (3.40, 3.48):
        s = AseAtomsAdaptor.get_structure(bulk("Li", "bcc", a=a, cubic=True))
        s.properties["provenance"] = {
            "family": "bulk",
            "generator": "strain",
            "parameters": {"a": a},
            "parent": None,
        }
        cells.append(s)
    summary = label_structures(cells, labeler, stores=stores)
    assert summary.counts == {"labeled": 2}
    frame = Dataset(stores).get(summary.frame_ids[0])
    assert -2.5 < frame.energy / frame.natoms < -1.0  # eV/atom, CHGNet's MP-compatible scale for Li
    assert frame.labeler.describe().endswith("(surrogate)") and frame.stress is not None
