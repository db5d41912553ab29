"""Hetero-interfaces, interdiffusion, amorphous cells and mixtures."""

from __future__ import annotations

import numpy as np
import pytest

from mlipflow.errors import StructureError
from mlipflow.structures import (
    amorphous_from_crystal,
    amorphous_mixture,
    build_interfaces,
    interdiffuse,
    interface_candidates,
    load_prototype,
    random_packing,
)
from mlipflow.structures.amorphous import pair_guards


@pytest.fixture(scope="module")
def lco_li2o():
    """LiCoO2(001) | Li2O(111): the small stand-in of the LiCoO2 | LLZO chemistry (Li-Co-O)."""
    return build_interfaces(
        load_prototype("LiCoO2"),
        load_prototype("Li2O"),
        (0, 0, 1),
        (1, 1, 1),
        max_area=120,
        max_strain=0.03,
        film_thickness=8,
        substrate_thickness=8,
        gaps=(1.8, 2.4),
        terminations=[0],
        entry="lco-li2o",
    )


def test_lco_li2o_interface_under_800_atoms(lco_li2o):
    rows = interface_candidates(lco_li2o)
    assert len(rows) == 2 and {r.gap for r in rows} == {1.8, 2.4}
    for s, r in zip(lco_li2o, rows, strict=True):
        assert len(s) < 800
        assert r.max_strain <= 0.03 + 1e-9 and r.von_mises_strain <= 0.03
        assert set(s.composition.elements) == {el for el in load_prototype("LiCoO2").composition.elements}
        assert s.properties["provenance"]["family"] == "interface"
        labels = set(s.site_properties["interface_label"])
        assert {"film", "substrate"} <= {lab.split("_")[0] for lab in labels}
        dm = s.distance_matrix + np.eye(len(s)) * 99
        assert dm.min() > 1.2  # Å: no overlapping atoms across the interface


def test_lco_llzo_interface_under_800_atoms():
    """The flagship pair itself: LiCoO2(001) | cubic LLZO(111), one termination, thin slabs."""
    cells = build_interfaces(
        load_prototype("LiCoO2"),
        load_prototype("LLZO-cubic"),
        (0, 0, 1),
        (1, 1, 1),
        max_area=300,
        max_strain=0.02,
        film_thickness=6,
        substrate_thickness=6,
        terminations=[0],
        max_atoms=800,
        entry="lco-llzo",
    )
    s = cells[0]
    p = s.properties["provenance"]
    assert len(s) < 800
    assert p["max_strain"] <= 0.02 and p["match_area"] == pytest.approx(295.2, abs=0.5)
    assert {str(e) for e in s.composition.elements} == {"Li", "Co", "O", "La", "Zr"}
    assert p["min_interatomic_distance"] >= 1.2


def test_interdiffusion_swaps_across(lco_li2o):
    base = lco_li2o[0]
    (s,) = interdiffuse(base, "Co", "Li", n_swaps=2, seed=0)
    assert s.composition == base.composition
    changed = [i for i, (a, b) in enumerate(zip(s, base, strict=True)) if a.specie != b.specie]
    assert len(changed) == 4
    assert s.properties["provenance"]["family"] == "interdiffused"


def test_li_li3ps4_interface():
    cells = build_interfaces(
        load_prototype("Li"),
        load_prototype("Li3PS4"),
        (1, 1, 0),
        (0, 0, 1),
        max_area=200,
        max_strain=0.04,
        film_thickness=6,
        substrate_thickness=6,
        entry="li-lps",
    )
    s = cells[0]
    p = s.properties["provenance"]
    assert len(s) < 800 and p["max_strain"] <= 0.04 + 1e-9
    assert {str(e) for e in s.composition.elements} == {"Li", "P", "S"}
    assert s.composition["P"] * 4 == s.composition["S"]  # the electrolyte side keeps whole PS4 units


def test_no_match_is_a_clear_error():
    with pytest.raises(StructureError, match=r"tight: no lattice match .*max_strain=0.001.*raise max_strain"):
        build_interfaces(
            load_prototype("Li"),
            load_prototype("Li3PS4"),
            (1, 1, 0),
            (0, 0, 1),
            max_area=60,
            max_strain=0.001,
            entry="tight",
        )


def test_amorphous_li3ps4_at_crystal_density():
    crystal = load_prototype("Li3PS4")
    s = amorphous_from_crystal(crystal, n_atoms=96, seed=4)
    assert s.composition.reduced_formula == "Li3PS4" and len(s) == 96
    assert s.density == pytest.approx(crystal.density, rel=0.02)
    guards = pair_guards(["Li", "P", "S"])
    dm = s.distance_matrix + np.eye(len(s)) * 99
    for i in range(len(s)):
        for j in range(i + 1, len(s)):
            assert dm[i, j] >= guards[(s[i].specie.symbol, s[j].specie.symbol)] - 1e-6
    assert s.properties["provenance"]["family"] == "amorphous"
    again = amorphous_from_crystal(crystal, n_atoms=96, seed=4)
    assert np.allclose(again.frac_coords, s.frac_coords)


def test_mixture_stoichiometries():
    cells = amorphous_mixture(load_prototype("LiCoO2"), load_prototype("Li2O"), fractions=(0.3, 0.7), n_atoms=60)
    co = [s.composition["Co"] for s in cells]
    assert co[0] < co[1]
    for s in cells:
        assert s.properties["provenance"]["family"] == "mixture"
        assert 2.0 < s.density < 5.1


def test_bad_formula_and_impossible_density():
    with pytest.raises(StructureError, match=r"amo: .*Xq"):
        random_packing("Li3Xq", density=2.0, n_atoms=20, entry="amo")
    with pytest.raises(StructureError, match="dense: cannot pack"):
        random_packing("Li3PS4", density=20.0, n_atoms=32, entry="dense", max_trials=50)


def test_lif_li2co3_interface_keeps_every_carbonate_and_charge():
    """LiF(001) | Li2CO3(010): every Li2CO3(010) plane cuts CO3 groups; the cut slabs are repaired."""
    from mlipflow.structures.bonds import shortest_pair_distances

    cells = build_interfaces(load_prototype("LiF"), load_prototype("Li2CO3"), (0, 0, 1), (0, 1, 0), max_area=120,
                             max_strain=0.04, film_thickness=6, substrate_thickness=6, terminations=[0],
                             entry="lif-li2co3")
    for s in cells:
        p = s.properties["provenance"]
        carbons = [i for i, x in enumerate(s) if x.specie.symbol == "C"]
        n_oxygen = [sum(n.specie.symbol == "O" for n in s.get_neighbors(s[i], 1.6)) for i in carbons]
        assert n_oxygen == [3] * len(carbons)  # no C with two O, no free O
        assert p["molecular_units"] == {"CO3": len(carbons)}
        assert p["charge_neutral"] and p["net_charge"] == {"film": 0.0, "substrate": 0.0}
        assert shortest_pair_distances(s, 3.0)[("C", "O")] == pytest.approx(1.283, abs=0.01)  # not strained
        assert p["min_distance_ratio"] >= 1.0 and p["n_interfaces"] == 2


def test_melt_quench_machinery_with_a_cheap_potential():
    """The melt-quench path (MD schedule, relaxation, provenance) on a toy Morse Li2O; CHGNet in the slow test."""
    from mlipflow.structures.jobs import AmorphousMaker

    maker = AmorphousMaker(n_atoms=24, melt_quench={"calculator": "toy-morse", "heat_steps": 5, "hold_steps": 10,
                                                    "quench_steps": 10, "anneal_steps": 5, "relax_steps": 5})
    (cell,) = maker.generate(load_prototype("Li2O"))
    p = cell.properties["provenance"]
    assert p["family"] == "amorphous" and p["generator"].endswith("melt_quench")
    mq = p["melt_quench"]
    assert mq["calculator"] == "toy-morse" and mq["steps"] == [5, 10, 10, 5] and mq["melt_temperature"] == 2000.0
    assert np.isfinite(mq["energy_per_atom_eV"]) and mq["max_force_eV_A"] < 50
    assert cell.composition.reduced_formula == "Li2O" and len(cell) == 24


@pytest.mark.slow
def test_amorphous_li3ps4_by_melt_quench_is_near_the_crystal(chgnet):
    """Li3PS4 melted at 2000 K and quenched with CHGNet (32 atoms, from the crystal: PS4 stay whole): largest force
    < 5 eV/Å and energy within 0.3 eV/atom of the crystal (the random packing was 1.6 eV/atom above)."""
    from mlipflow.structures.bonds import molecular_bonds, molecular_units, unit_formulas
    from mlipflow.structures.jobs import AmorphousMaker

    lps = load_prototype("Li3PS4")
    maker = AmorphousMaker(n_atoms=32, melt_quench={"calculator": chgnet, "heat_steps": 25, "hold_steps": 100,
                                                    "quench_steps": 100, "anneal_steps": 25, "relax_steps": 30})
    (cell,) = maker.generate(lps)
    from pymatgen.io.ase import AseAtomsAdaptor

    bulk = AseAtomsAdaptor.get_atoms(lps)
    bulk.calc = chgnet
    e_crystal = bulk.get_potential_energy() / len(bulk)
    mq = cell.properties["provenance"]["melt_quench"]
    assert mq["max_force_eV_A"] < 5.0
    assert mq["energy_per_atom_eV"] - e_crystal < 0.3
    units = unit_formulas(cell, molecular_units(cell, molecular_bonds(lps)))
    assert len(cell) == 32 and units["PS4"] == 4  # every P in a whole PS4
