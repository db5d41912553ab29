"""VASP static labels through atomate2's StaticMaker and a fake run (atomate2's testing harness).

The reference directory (``data/vasp_licoo2_static``, see ``data/README.md``) is a recorded reference
for parsing, not a VASP run: its energy/forces/stress are CHGNet values written in VASP's file formats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import units
from pymatgen.core import Structure

from mlipflow.data import Dataset
from mlipflow.labeling import label_structures
from mlipflow.labeling.consistency import LabelConsistencyGuard
from mlipflow.labeling.vasp import STATIC_JOB_NAME, VaspLabeler, label_safe_vasp_handlers

DATA = Path(__file__).parent / "data"
REF = DATA / "vasp_licoo2_static"


#: valence electrons (ZVAL) of the PBE_54 POTCARs atomate2 picks (Li_sv, Co, O), standing in for POTCAR files
ZVAL = {"Li": 3, "Co": 9, "O": 6}


def _nelect(self) -> float:
    """pymatgen's ``VaspInputSet.nelect`` with ZVAL from :data:`ZVAL` instead of POTCAR files."""
    neutral = sum(ZVAL[el.symbol] * n for el, n in self.structure.composition.items())
    return neutral - (self.structure.charge if self.use_structure_charge else 0)  # mlipflow leaves it False


@pytest.fixture
def mock_vasp(monkeypatch):
    import contextlib

    from atomate2.utils.testing.vasp import monkeypatch_vasp
    from pymatgen.io.vasp.sets import VaspInputSet

    harness = monkeypatch_vasp(monkeypatch, DATA, nelect=24)
    fake = next(harness)
    # the harness replaces the nelect property by a function; NELECT must be a number of electrons
    monkeypatch.setattr(VaspInputSet, "nelect", property(_nelect))
    yield fake
    with contextlib.suppress(StopIteration):
        next(harness)


def reference_structure() -> Structure:
    """The structure of the reference (LiCoO2, 4 atoms, one O displaced by 0.05 Å)."""
    return Structure.from_file(REF / "inputs" / "POSCAR")


def test_vasp_static_through_fake_run_writes_labeled_frame_with_u(stores, mock_vasp, tmp_path):
    mock_vasp({STATIC_JOB_NAME: "vasp_licoo2_static"})
    structure = reference_structure()
    structure.properties["provenance"] = {
        "family": "bulk",
        "generator": "rattle",
        "parameters": {},
        "parent": "mp-22526",
    }
    summary = label_structures([structure], VaspLabeler(), stores=stores, workdir=tmp_path)
    assert summary.counts == {"labeled": 1}, summary

    frame = Dataset(stores).get(summary.frame_ids[0])
    assert frame.labeler.kind == "dft" and frame.labeler.name == "vasp-pbe+u"
    settings = frame.labeler.settings
    assert settings["hubbard_u"]["u_ev"]["Co"] == 3.32 and settings["functional"] == "PBE"
    assert settings["encut_ev"] == 520.0 and settings["smearing"] == {"ismear": 0, "sigma_ev": 0.05}
    doc = stores.frames.find_one({"_id": summary.frame_ids[0]})
    assert doc["label_details"]["hubbards"] == {"Co": 3.32}  # the U the run actually used
    assert doc["label_details"]["incar"]["GGA"].upper() == "PE"

    # the recorded values, mapped back to the input site order and to ASE units/signs
    from pymatgen.io.vasp import Vasprun

    vr = Vasprun(str(REF / "outputs" / "vasprun.xml"), parse_potcar_file=False, parse_dos=False)
    step = vr.ionic_steps[-1]
    assert frame.energy == pytest.approx(step["e_fr_energy"])
    ref_forces = np.asarray(step["forces"])
    np.testing.assert_allclose(frame.forces, ref_forces, atol=1e-6)
    # stress: vasprun kBar (compressive positive) -> frame GPa (ASE sign, tensile positive)
    np.testing.assert_allclose(frame.stress, -0.1 * np.asarray(step["stress"]), atol=1e-6)
    np.testing.assert_allclose(
        frame.to_atoms().get_stress(voigt=False), -0.1 * units.GPa * np.asarray(step["stress"])
    )
    assert frame.magmoms == pytest.approx([0.05 if site.specie.symbol == "Co" else 0.0 for site in structure])
    # a convergence-only custodian correction is recorded with the label
    assert frame.corrections and frame.corrections[0]["handler"] == "UnconvergedErrorHandler"
    assert frame.corrections[0]["actions"][0]["action"] == {"_set": {"ALGO": "Normal"}}

    # labeled once: the second pass neither writes inputs nor "runs" VASP
    again = label_structures([structure], VaspLabeler(), stores=stores, workdir=tmp_path)
    assert again.counts == {"reused": 1} and again.calculator_calls == 0


def test_vasp_other_u_is_another_label_and_a_u_mismatch_fails(stores, mock_vasp, tmp_path):
    mock_vasp(
        {STATIC_JOB_NAME: "vasp_licoo2_static"}, {STATIC_JOB_NAME: {"check_inputs": ["poscar", "potcar"]}}
    )
    labeler = VaspLabeler(hubbard_u={"Co": 4.0})
    assert labeler.info.settings_hash != VaspLabeler().info.settings_hash
    summary = label_structures(
        [reference_structure()], labeler, stores=stores, workdir=tmp_path, max_attempts=1
    )
    assert summary.counts == {"failed": 1}
    doc = stores.frames.find_one({"_id": summary.frame_ids[0]})
    assert "used U {'Co': 3.32}" in doc["failure"]


def test_label_safe_profile():
    names = [type(h.handler).__name__ for h in label_safe_vasp_handlers()]
    assert "LargeSigmaHandler" not in names and "IncorrectSmearingHandler" not in names
    assert "KspacingMetalHandler" not in names and "VaspErrorHandler" in names
    assert all(isinstance(h, LabelConsistencyGuard) for h in label_safe_vasp_handlers())


def test_guard_refuses_encut_change_and_keeps_algo_change(tmp_path):
    from custodian.custodian import ErrorHandler
    from custodian.utils import backup  # noqa: F401 - custodian is importable
    from pymatgen.io.vasp import Incar

    Incar({"ENCUT": 520, "ALGO": "Fast", "ISMEAR": 0, "SIGMA": 0.05, "LDAUU": [3.32, 0, 0]}).write_file(
        tmp_path / "INCAR"
    )

    class Changes(ErrorHandler):
        def __init__(self, updates):
            self.updates = updates

        def check(self, directory="./"):
            return True

        def correct(self, directory="./"):
            incar = Incar.from_file(Path(directory) / "INCAR")
            incar.update(self.updates)
            incar.write_file(Path(directory) / "INCAR")
            return {"errors": ["e"], "actions": [{"dict": "INCAR", "action": {"_set": self.updates}}]}

    for physics in ({"ENCUT": 400}, {"ISMEAR": -5}, {"SIGMA": 0.2}, {"LDAUU": [0, 0, 0]}, {"GGA": "PS"}):
        result = LabelConsistencyGuard(Changes(physics), "vasp").correct(str(tmp_path))
        assert result["actions"] is None, physics
        assert Incar.from_file(tmp_path / "INCAR")["ENCUT"] == 520  # restored
    ok = LabelConsistencyGuard(Changes({"ALGO": "Normal", "NELM": 300}), "vasp").correct(str(tmp_path))
    assert ok["actions"] and Incar.from_file(tmp_path / "INCAR")["ALGO"] == "Normal"


def test_dipole_correction_for_slabs():
    from mlipflow.labeling.vasp import battery_interface_set_generator

    s = reference_structure()
    incar = battery_interface_set_generator(dipole_correction=True).get_input_set(s, potcar_spec=True).incar
    assert incar["LDIPOL"] is True and incar["IDIPOL"] == 3 and len(incar["DIPOL"]) == 3
    assert VaspLabeler(dipole_correction=True).info.settings["dipole_correction"] is True


def test_vasp_preflight_says_what_to_set(tmp_path, monkeypatch):
    from pymatgen.core import SETTINGS

    from mlipflow.errors import ConfigError

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    labeler = VaspLabeler(run_vasp_kwargs={"vasp_cmd": "vasp_std"})
    with pytest.raises(ConfigError, match=r"vasp_std not found on the PATH .*set ATOMATE2_VASP_CMD"):
        labeler.preflight(["Li", "Co", "O"])
    exe = bin_dir / "vasp_std"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.delitem(SETTINGS, "PMG_VASP_PSP_DIR", raising=False)
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    with pytest.raises(ConfigError, match="PMG_VASP_PSP_DIR is not set"):
        labeler.preflight(["Li", "Co", "O"])
    psp = tmp_path / "psp"
    monkeypatch.setitem(SETTINGS, "PMG_VASP_PSP_DIR", str(psp))
    with pytest.raises(ConfigError, match="no POT_GGA_PAW_PBE_54 directory"):
        labeler.preflight(["Li"])
    (psp / "POT_GGA_PAW_PBE_54").mkdir(parents=True)
    for name in ("Li_sv", "Co"):
        (psp / "POT_GGA_PAW_PBE_54" / f"POTCAR.{name}.gz").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"no PBE_54 POTCAR for \['O'\]"):
        labeler.preflight(["Li", "Co", "O"])
    labeler.preflight(["Li", "Co"])
