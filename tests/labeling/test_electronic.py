"""Charge, spin and k-points reach the DFT inputs: CP2K CHARGE/MULTIPLICITY/UKS/KPOINTS/+U, VASP NELECT/ISPIN.

The CP2K inputs are written by atomate2's generator with pymatgen's CP2K data directory (``scripts/setup_cp2k.sh``;
skipped without it); no DFT is run.  VASP inputs need no POTCAR files except for NELECT, whose valences
(ZVAL) stand in for them here.
"""

from __future__ import annotations

import functools
import shutil

import pytest
from pymatgen.core import Lattice, Structure

from mlipflow.data import LabeledFrame
from mlipflow.errors import ConfigError, LabelingError
from mlipflow.labeling.cp2k import Cp2kLabeler, ensure_pmg_cp2k_settings
from mlipflow.labeling.electronic import (
    electronic_state,
    hund_multiplicity,
    kpoint_mesh,
    system_charge,
    with_system_charge,
)
from mlipflow.structures.defects import vacancies


def _cp2k_data() -> bool:
    try:
        ensure_pmg_cp2k_settings()
    except ConfigError:
        return False
    return shutil.which("cp2k.psmp") is not None


needs_cp2k_data = pytest.mark.skipif(not _cp2k_data(), reason="pymatgen CP2K data missing: scripts/setup_cp2k.sh")


def li2o() -> Structure:
    """Conventional antifluorite Li2O, 12 atoms, a = 4.61 Å."""
    fcc = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    li = [[x / 4, y / 4, z / 4] for x in (1, 3) for y in (1, 3) for z in (1, 3)]
    return Structure(Lattice.cubic(4.61), ["Li"] * 8 + ["O"] * 4, li + fcc)


@functools.cache
def _li_vacancy(compensation: str) -> Structure:
    cell = li2o() * (2, 1, 1)
    (s,) = vacancies(cell, "Li", target_fraction=15 / 16, compensation=compensation, seed=3)
    return s


def li_vacancy(compensation: str) -> Structure:
    """Li2O 2x1x1 (24 atoms) with one Li removed by the defect generator."""
    return _li_vacancy(compensation).copy()


def free_atom(symbol: str) -> Structure:
    return Structure(Lattice.cubic(12.0), [symbol], [[0.5, 0.5, 0.5]])


def _keywords(text: str, key: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().split(" ")[0] == key]


def test_hund_multiplicities_of_free_atoms():
    assert {el: hund_multiplicity(el) for el in ("Li", "O", "N", "Mn", "Cr", "Cu", "Ne")} == {
        "Li": 2, "O": 3, "N": 4, "Mn": 6, "Cr": 7, "Cu": 2, "Ne": 1,
    }  # fmt: skip


def test_charge_follows_the_generators_provenance():
    bare = li_vacancy("none")
    assert bare.properties["provenance"]["net_charge"] == -1.0
    assert system_charge(bare) == -1
    assert system_charge(li_vacancy("electronic")) == 0  # a hole on the lattice: the cell stays neutral
    assert system_charge(li2o(), {"net_charge": {"film": -1.0, "substrate": 2.0}}) == 1
    assert system_charge(li2o(), {"charge": 2, "net_charge": -1.0}) == 2
    with pytest.raises(LabelingError, match="not an integer number of electrons"):
        system_charge(li2o(), {"net_charge": -0.5})


def test_charged_cell_is_another_frame_and_keeps_its_id_through_the_store():
    labeler_hash = "x" * 32
    neutral = with_system_charge(li_vacancy("electronic"))
    charged = with_system_charge(li_vacancy("none"))
    assert neutral.cart_coords.tolist() == charged.cart_coords.tolist()  # same geometry
    ids = []
    for s in (neutral, charged):
        frame = LabeledFrame.model_validate({"structure": s, "labeler": {"name": "t", "kind": "dft"},
                                             "status": "pending"})
        doc = frame.to_document()
        again = LabeledFrame.from_document(doc)
        assert again.content_hash == doc["_id"]  # the charge survives the store
        ids.append(doc["_id"])
    assert ids[0] != ids[1]
    # a neutral frame's id is what it was before charges were hashed
    from mlipflow.data.hashing import content_hash

    plain = li_vacancy("electronic")
    assert content_hash(neutral, labeler_hash) == content_hash(plain, labeler_hash)


def test_kpoint_mesh_from_the_cell_and_gamma_refused_for_small_cells():
    assert kpoint_mesh(li2o(), kspacing=0.5) == (3, 3, 3)  # 4.61 Å: |b| = 1.36 Å⁻¹
    assert kpoint_mesh(li2o() * (3, 3, 3), kspacing=0.5) == (1, 1, 1)  # 13.8 Å
    assert kpoint_mesh(free_atom("Li"), kspacing=0.5) == (1, 1, 1)  # vacuum on every axis
    with pytest.raises(LabelingError, match=r"Γ-only label refused .*3x3x3 mesh"):
        electronic_state(li2o(), kpoints="gamma")
    assert electronic_state(li2o(), kpoints="gamma", allow_small_gamma=True).kpoints == (1, 1, 1)


@needs_cp2k_data
def test_cp2k_charged_vacancy_gets_charge_and_singlet(tmp_path):
    text_of = {}
    for comp in ("none", "electronic"):
        s = with_system_charge(li_vacancy(comp))
        state = Cp2kLabeler().write_input(s, tmp_path / comp)
        text_of[comp] = (state, (tmp_path / comp / "cp2k.inp").read_text())
    state, text = text_of["none"]
    # 8 O (q6) + 15 Li (q3) = 93 valence electrons, +1 for the -1 cell: 94, closed shell
    assert state.charge == -1 and state.electrons == 94 and state.multiplicity == 1
    assert _keywords(text, "CHARGE") == ["CHARGE -1"] and _keywords(text, "MULTIPLICITY") == ["MULTIPLICITY 1"]
    assert _keywords(text, "UKS") == ["UKS False"]
    state, text = text_of["electronic"]  # the same cell, neutral: 93 electrons, a doublet
    assert state.charge == 0 and state.multiplicity == 2
    assert _keywords(text, "CHARGE") == ["CHARGE 0"] and _keywords(text, "MULTIPLICITY") == ["MULTIPLICITY 2"]
    assert _keywords(text, "UKS") == ["UKS True"]
    # 9.2 x 4.6 x 4.6 Å: a 2x3x3 mesh, so diagonalisation with smearing instead of OT
    assert state.kpoints == (2, 3, 3) and "&KPOINTS" in text and "&SMEAR" in text and "&OT" not in text
    # CP2K's own mesh, reduced by time reversal only: a point-group-reduced list would give wrong forces
    assert _keywords(text, "SCHEME") == ["SCHEME MONKHORST-PACK 2 3 3"] and "SYMMETRY False" in text


@needs_cp2k_data
def test_cp2k_isolated_li_atom_is_unrestricted_doublet_and_o_a_triplet(tmp_path):
    for symbol, mult in (("Li", 2), ("O", 3)):
        state = Cp2kLabeler().write_input(with_system_charge(free_atom(symbol)), tmp_path / symbol)
        text = (tmp_path / symbol / "cp2k.inp").read_text()
        assert state.multiplicity == mult and state.gamma_only
        assert _keywords(text, "UKS") == ["UKS True"]
        assert _keywords(text, "MULTIPLICITY") == [f"MULTIPLICITY {mult}"]
        assert "&KPOINTS" not in text and "&SMEAR" not in text and "&OT" in text  # integer occupations


@needs_cp2k_data
def test_cp2k_transition_metal_gets_u_smearing_and_moments(tmp_path):
    third = [[0, 0, 0], [2 / 3, 1 / 3, 1 / 3], [1 / 3, 2 / 3, 2 / 3]]  # R-3m hexagonal setting
    coords = [[x, y, (z + dz) % 1] for dz in (0.0, 0.5, 0.24, 0.76) for x, y, z in third]
    lco = Structure(Lattice.hexagonal(2.82, 14.05), ["Li"] * 3 + ["Co"] * 3 + ["O"] * 6, coords)
    Cp2kLabeler().write_input(with_system_charge(lco), tmp_path)
    text = (tmp_path / "cp2k.inp").read_text()
    co = text[text.index("&KIND Co"):]
    co = co[: co.index("&END KIND")]
    assert "U_MINUS_J [eV] 3.32" in co and "L 2" in co and "MAGNETIZATION 0.6" in co
    assert _keywords(text, "PLUS_U_METHOD") == ["PLUS_U_METHOD MULLIKEN"]
    assert "METHOD FERMI_DIRAC" in text and "ELEC_TEMP 500.0" in text
    li = text[text.index("&KIND Li"):]
    assert "DFT_PLUS_U" not in li[: li.index("&END KIND")]
    off = Cp2kLabeler(hubbard_u={})
    off.write_input(with_system_charge(lco), tmp_path / "no_u")
    assert "DFT_PLUS_U" not in (tmp_path / "no_u" / "cp2k.inp").read_text()


def test_every_choice_is_in_the_cp2k_settings_hash():
    base = Cp2kLabeler()
    base._version = "2023.1"  # do not ask the binary
    hashes = {base.info.settings_hash}
    for changed in (dict(kspacing=0.3), dict(kpoints="gamma"), dict(hubbard_u={}), dict(electronic_temperature=300.0),
                    dict(allow_small_gamma=True), dict(vacuum_gap=8.0)):
        other = Cp2kLabeler(**changed)
        other._version = "2023.1"
        hashes.add(other.info.settings_hash)
    assert len(hashes) == 7


def test_vasp_charged_cell_gets_nelect_and_free_atom_its_moment(monkeypatch):
    from pymatgen.io.vasp.sets import VaspInputSet

    from mlipflow.labeling.vasp import battery_interface_set_generator

    zval = {"Li": 3, "O": 6}  # PBE_54 Li_sv and O, standing in for POTCAR files
    monkeypatch.setattr(VaspInputSet, "nelect", property(
        lambda self: float(sum(zval[el.symbol] * n for el, n in self.structure.composition.items()))))
    gen = battery_interface_set_generator(spin_polarized=False)
    incar = gen.get_input_set(with_system_charge(li_vacancy("none")), potcar_spec=True).incar
    assert incar["NELECT"] == 94.0 and incar["ISPIN"] == 1  # 93 valence electrons + 1
    incar = gen.get_input_set(with_system_charge(li_vacancy("electronic")), potcar_spec=True).incar
    assert "NELECT" not in incar and incar["ISPIN"] == 2  # 93 electrons: spin polarised although asked not
    incar = gen.get_input_set(with_system_charge(free_atom("Li")), potcar_spec=True).incar
    assert incar["ISPIN"] == 2 and incar["NUPDOWN"] == 1 and incar["MAGMOM"] == [1.0]
