"""Filtered and failed labels with their reasons: the ledger's list, `mlipflow dataset filtered`, the report."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from ase.build import bulk
from ase.calculators.lj import LennardJones
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.labeling import SanityFilter, SurrogateLabeler, label_structures
from mlipflow.labeling.ledger import rejected_labels

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
