"""One real CP2K single point (PBE, GTH, DZVP-MOLOPT-SR-GTH, Gamma point) through atomate2's input set and
custodian, checked against a central finite difference of the energy along a 2-atom displacement.

Needs ``cp2k.psmp`` and the pymatgen CP2K data directory (``scripts/setup_cp2k.sh``); skipped otherwise.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from mlipflow.errors import ConfigError
from mlipflow.labeling import label_structures
from mlipflow.labeling.consistency import LabelConsistencyGuard, cp2k_fingerprint
from mlipflow.labeling.cp2k import Cp2kLabeler, ensure_pmg_cp2k_settings

logger = logging.getLogger(__name__)


def _cp2k_ready() -> bool:
    if shutil.which("cp2k.psmp") is None:
        return False
    try:
        ensure_pmg_cp2k_settings()
    except ConfigError:
        return False
    return True


needs_cp2k = pytest.mark.skipif(
    not _cp2k_ready(), reason="cp2k.psmp or PMG_CP2K_DATA_DIR missing: scripts/setup_cp2k.sh"
)


def lih_in_box(shift: float = 0.0) -> Structure:
    """A stretched LiH molecule (1.9 Å) in a 6 Å box; Li moved by +``shift`` along d, H by -``shift``."""
    d = np.array([1.0, 0.3, 0.0]) / np.linalg.norm([1.0, 0.3, 0.0])
    li = np.array([2.0, 3.0, 3.0]) + shift * d
    h = np.array([3.9, 3.0, 3.0]) - shift * d
    return Structure(Lattice.cubic(6.0), ["Li", "H"], [li, h], coords_are_cartesian=True)


@pytest.mark.slow
@needs_cp2k
def test_cp2k_single_point_forces_match_finite_difference(stores, tmp_path):
    labeler = Cp2kLabeler(cutoff=400.0, rel_cutoff=50.0)
    h = 0.01  # Å, along the 2-atom displacement vector
    structures = [lih_in_box(0.0), lih_in_box(+h), lih_in_box(-h)]
    summary = label_structures(structures, labeler, stores=stores, workdir=tmp_path)
    assert summary.counts == {"labeled": 3}, summary
    frames = [stores.frames.find_one({"_id": i}) for i in summary.frame_ids]
    centre = frames[0]
    assert centre["labeler"]["kind"] == "dft" and centre["labeler"]["name"] == "cp2k-pbe"
    assert centre["labeler"]["settings"]["basis"] == "DZVP-MOLOPT-SR-GTH"
    forces = np.asarray(centre["forces"])
    assert forces.shape == (2, 3)
    assert np.abs(forces.sum(axis=0)).max() < 0.05  # momentum conservation (eV/Å)
    d = np.array([1.0, 0.3, 0.0]) / np.linalg.norm([1.0, 0.3, 0.0])
    # E(λ) with Li at +λd and H at -λd: dE/dλ = -(F_Li·d - F_H·d)
    analytic = -(forces[0] @ d - forces[1] @ d)
    numeric = (frames[1]["energy"] - frames[2]["energy"]) / (2 * h)
    logger.info("CP2K dE/dλ: analytic %.6f eV/Å, finite difference %.6f eV/Å", analytic, numeric)
    assert abs(analytic) > 0.3  # a real force, not noise (eV/Å)
    assert numeric == pytest.approx(analytic, rel=0.01)
    assert centre["stress"] is not None and np.isfinite(centre["stress"]).all()


@needs_cp2k
def test_cp2k_input_is_light_and_stated(tmp_path):
    from atomate2.cp2k.files import write_cp2k_input_set

    labeler = Cp2kLabeler()
    s = lih_in_box()
    write_cp2k_input_set(s, labeler.input_set_generator(s), directory=tmp_path)
    text = (tmp_path / "cp2k.inp").read_text()
    for needle in (
        "CUTOFF 400",
        "REL_CUTOFF 50",
        "PRECONDITIONER FULL_ALL",
        "&PBE",
        "DZVP-MOLOPT-SR-GTH",
        "GTH-PBE-q3",
    ):
        assert needle in text, needle
    assert "KPOINTS" not in text and "SMEAR" not in text
    fp = cp2k_fingerprint(tmp_path)
    assert fp["FORCE_EVAL/DFT/MGRID/CUTOFF"] is not None


def test_guard_refuses_a_cutoff_change(tmp_path):
    from custodian.custodian import ErrorHandler

    (tmp_path / "cp2k.inp").write_text(
        "&FORCE_EVAL\n&DFT\n&MGRID\nCUTOFF 400\n&END MGRID\n&SCF\nMAX_SCF 20\n&END SCF\n"
        "&END DFT\n&END FORCE_EVAL\n"
    )

    class Raises(ErrorHandler):
        def __init__(self, text):
            self.text = text

        def check(self, directory="./"):
            return True

        def correct(self, directory="./"):
            (tmp_path / "cp2k.inp").write_text(self.text)
            return {"errors": ["x"], "actions": [{"dict": "cp2k.inp"}]}

    original = (tmp_path / "cp2k.inp").read_text()
    bad = LabelConsistencyGuard(Raises(original.replace("CUTOFF 400", "CUTOFF 600")), "cp2k").correct(
        str(tmp_path)
    )
    assert bad["actions"] is None and "refused" in bad["errors"][-1]
    assert (tmp_path / "cp2k.inp").read_text() == original  # restored
    ok = LabelConsistencyGuard(Raises(original.replace("MAX_SCF 20", "MAX_SCF 60")), "cp2k").correct(
        str(tmp_path)
    )
    assert ok["actions"] and "MAX_SCF 60" in (tmp_path / "cp2k.inp").read_text()


def test_missing_cp2k_is_refused_with_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing installed
    monkeypatch.delenv("ATOMATE2_CP2K_CMD", raising=False)
    with pytest.raises(ConfigError, match=r"not found on the PATH .*apt-get install cp2k.*ATOMATE2_CP2K_CMD"):
        Cp2kLabeler().preflight(["Li", "O"])
    with pytest.raises(ConfigError, match=r"cp2k\.psmp not found"):
        Cp2kLabeler(cp2k_cmd="cp2k.psmp -i").preflight()


@needs_cp2k
def test_cp2k_preflight_passes_here_and_names_missing_element_data(tmp_path, monkeypatch):
    from pymatgen.core import SETTINGS

    Cp2kLabeler().preflight(["Li", "O"])
    # the check below points pymatgen at a partial directory: the real one is restored after the test
    monkeypatch.setitem(SETTINGS, "PMG_CP2K_DATA_DIR", SETTINGS["PMG_CP2K_DATA_DIR"])
    data = tmp_path / "data"
    data.mkdir()
    (data / "Li").write_text("x")
    with pytest.raises(ConfigError, match=r"no pymatgen CP2K data for \['O'\]"):
        Cp2kLabeler(data_dir=str(data)).preflight(["Li", "O"])
