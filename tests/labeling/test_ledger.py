"""Filtered and failed labels with their reasons: the ledger's list, `mlipflow dataset filtered`, the report."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
from ase.build import bulk
from ase.calculators.lj import LennardJones
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.labeling import SanityFilter, SurrogateLabeler, label_structures
from mlipflow.labeling.ledger import LabelLedger, rejected_labels

LJ = {"sigma": 2.7, "epsilon": 0.05, "rc": 5.0}


def _cells(n: int) -> list:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat((2, 1, 1))
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        s = AseAtomsAdaptor.get_structure(atoms)
        s.properties["provenance"] = {"family": "bulk", "generator": "rattle", "parameters": {"index": i}}
        out.append(s)
    out[-1].translate_sites([0], [1.6, 0, 0], frac_coords=False)  # two Li atoms ~1.4 Å apart: huge forces
    return out


class _FailsOnce:
    """A Lennard-Jones factory whose first calculation raises."""

    __name__ = "flaky-lj"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, **kwargs):
        owner = self

        class Flaky(LennardJones):
            def calculate(self, atoms=None, properties=("energy",), system_changes=()):
                owner.calls += 1
                if owner.calls == 1:
                    raise RuntimeError("SCF did not converge (injected)")
                super().calculate(atoms, properties, system_changes)

        return Flaky(**kwargs)


def _label(stores) -> None:
    labeler = SurrogateLabeler(calculator=_FailsOnce(), calculator_kwargs=LJ, name="lj-li", version="t",
                               torch_threads=None)
    tags = {"campaign": "demo", "iteration": 2}
    label_structures(_cells(4), labeler, stores=stores, max_attempts=1, sanity_filter=SanityFilter(max_force=5.0),
                     provenance=[tags] * 4)


def test_rejected_labels_list_filtered_and_failed_with_reasons(stores):
    _label(stores)
    rows = rejected_labels(stores.frames, campaign="demo")
    assert sorted(r["status"] for r in rows) == ["failed", "filtered"]
    failed = next(r for r in rows if r["status"] == "failed")
    filtered = next(r for r in rows if r["status"] == "filtered")
    assert "SCF did not converge (injected)" in failed["reason"] and failed["attempts"] == 1
    assert "exceeds max_force=5.0" in filtered["reason"]
    assert filtered["iteration"] == 2 and filtered["family"] == "bulk" and filtered["formula"] == "Li"
    assert filtered["n_atoms"] == 4 and filtered["labeler"].startswith("lj-li")
    assert rejected_labels(stores.frames, campaign="other") == []


def test_dataset_filtered_command_and_report_section(stores, tmp_path):
    _label(stores)
    env = dict(os.environ, COLUMNS="80")
    out = subprocess.run([sys.executable, "-m", "mlipflow", "dataset", "filtered", "demo"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "1 filtered and 1 failed labels in campaign demo" in out.stdout
    assert "exceeds max_force=5.0" in out.stdout and "SCF did not converge" in out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    none = subprocess.run([sys.executable, "-m", "mlipflow", "dataset", "filtered", "nothing"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert "no filtered or failed labels in campaign nothing" in none.stdout

    from mlipflow.benchmark.report import report

    html = report("demo", tmp_path / "demo.html", stores=stores).read_text()
    section = html[html.index('<section id="filtered">'):]
    section = section[:section.index("</section>")]
    assert "exceeds max_force=5.0" in section and "SCF did not converge" in section


class _SlowLJ:
    """A Lennard-Jones factory whose calculations take ``seconds`` and are counted (shared between workers)."""

    __name__ = "slow-lj"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, **kwargs):
        owner = self

        class Slow(LennardJones):
            def calculate(self, atoms=None, properties=("energy",), system_changes=()):
                with owner.lock:
                    owner.calls += 1
                time.sleep(owner.seconds)
                super().calculate(atoms, properties, system_changes)

        return Slow(**kwargs)


def _two_workers(stores, stale_after: float) -> tuple[int, dict, dict, str]:
    """Worker A labels one cell with a 1.2 s calculation; worker B asks for the same cell 0.5 s later."""
    slow = _SlowLJ(1.2)
    cell = _cells(2)[0]
    results: dict[str, dict] = {}

    def worker(name: str) -> None:
        labeler = SurrogateLabeler(calculator=slow, calculator_kwargs=LJ, name="slow-lj", version="t",
                                   torch_threads=None)
        summary = label_structures([cell], labeler, stores=stores, stale_after=stale_after)
        results[name] = {"counts": summary.counts, "id": summary.frame_ids[0]}

    a = threading.Thread(target=worker, args=("a",))
    a.start()
    time.sleep(0.5)  # A's claim (0.2 s expiry) would be long expired without renewal
    worker("b")
    a.join()
    doc = stores.frames.find_one({"_id": results["a"]["id"]})
    return slow.calls, results["a"]["counts"], results["b"]["counts"], doc["status"]


def test_heartbeat_keeps_a_long_calculation_from_running_twice(stores):
    calls, a, b, status = _two_workers(stores, stale_after=0.2)
    assert calls == 1
    assert a == {"labeled": 1} and b == {"in_flight": 1}
    assert status == "labeled"


def test_without_heartbeat_the_expired_claim_is_taken_over(stores, monkeypatch):
    """The control: with renewal switched off, the same setup runs the calculation twice."""
    from contextlib import nullcontext

    monkeypatch.setattr(LabelLedger, "heartbeat", lambda self, claim, interval=None: nullcontext())
    calls, a, b, _status = _two_workers(stores, stale_after=0.2)
    assert calls == 2
    assert b == {"labeled": 1} and a == {"in_flight": 1}  # A's result is discarded: its claim was lost


def test_a_dead_holders_claim_is_taken_over_a_live_one_is_not(stores):
    labeler = SurrogateLabeler(calculator="lj", calculator_kwargs=LJ, name="lj-li", version="t", torch_threads=None)
    ledger = LabelLedger(stores.frames, labeler.info, stale_after=3600.0)
    frame_id, _ = ledger.register(_cells(2)[0])
    claim = ledger.claim(frame_id, max_attempts=2)
    assert claim is not None and ledger.claim(frame_id, max_attempts=2) is None  # live: not taken
    assert ledger.renew(claim)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stores.frames.update_one({"_id": frame_id}, {"$set": {"claim.pid": int(dead.stdout)}})
    taken = ledger.claim(frame_id, max_attempts=2)
    assert taken is not None and not ledger.renew(claim)  # the old holder's renewal now fails
