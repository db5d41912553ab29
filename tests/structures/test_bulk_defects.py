"""Prototypes, bulk variants and point defects."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlipflow.errors import StructureError
from mlipflow.structures import (
    PROTOTYPES,
    antisites,
    load_prototype,
    make_supercell,
    perturb_cells,
    rattle,
    strain_series,
    substitute,
    vacancies,
)
from mlipflow.structures.prototypes import prototype_header
from mlipflow.structures.provenance import min_distance, net_charge, perpendicular_widths

EXPECTED = {
    "Li2O": ("Li2O", 12),
    "Li2S": ("Li2S", 12),
    "LiF": ("LiF", 8),
    "Li2CO3": ("Li2CO3", 24),
    "Li": ("Li", 2),
    "LiCoO2": ("LiCoO2", 12),
    "LLZO-cubic": ("Li7La3Zr2O12", 192),
    "LLZO-tetragonal": ("Li7La3Zr2O12", 192),
    "Li3PS4": ("Li3PS4", 16),
    "Li6PS5Cl": ("Li6PS5Cl", 52),
}


def _check_provenance(s, family):
    p = s.properties["provenance"]
    assert p["family"] == family
    assert {"family", "generator", "parameters", "parent"} <= set(p)
    json.dumps(p)


@pytest.mark.parametrize("name", list(PROTOTYPES))
def test_prototypes_load_ordered_and_sane(name):
    s = load_prototype(name)
    formula, n = EXPECTED[name]
    assert s.composition.reduced_formula == formula
    assert len(s) == n
    assert s.is_ordered
    assert min_distance(s) > (1.25 if name == "Li2CO3" else 1.75)  # Å (C-O of carbonate: 1.28 Å)
    assert net_charge(s) == 0.0
    _check_provenance(s, "bulk")
    header = prototype_header(name)
    assert "A" in header and ("19" in header or "20" in header)  # lattice parameters and a cited year


def test_prototype_densities_match_literature():
    # X-ray densities (g/cm^3) implied by the literature lattice parameters
    assert load_prototype("Li2O").density == pytest.approx(2.02, abs=0.02)
    assert load_prototype("LiCoO2").density == pytest.approx(5.05, abs=0.05)
    assert load_prototype("LLZO").density == pytest.approx(5.11, abs=0.05)
    assert load_prototype("Li").density == pytest.approx(0.53, abs=0.01)


def test_unknown_prototype_names_choices():
    with pytest.raises(StructureError, match=r"unknown prototype 'LiFePO4'.*LiCoO2"):
        load_prototype("LiFePO4")


def test_supercell_reaches_twice_the_cutoff():
    s = make_supercell(load_prototype("LiCoO2"), cutoff=5.0)
    assert np.all(perpendicular_widths(s) >= 10.0 - 1e-6)
    assert s.composition.reduced_formula == "LiCoO2"
    _check_provenance(s, "bulk")
    with pytest.raises(StructureError, match=r"my-entry.*max_atoms 50"):
        make_supercell(load_prototype("LiCoO2"), cutoff=5.0, max_atoms=50, entry="my-entry")


def test_strain_series_isotropic_and_axial():
    li2o = load_prototype("Li2O")
    iso = strain_series(li2o, [-0.02, 0.02])
    assert [s.lattice.a for s in iso] == pytest.approx([4.6114 * 0.98, 4.6114 * 1.02], rel=1e-6)
    axial = strain_series(li2o, [0.01], mode="axial")
    assert len(axial) == 3
    assert axial[2].lattice.abc == pytest.approx((4.6114, 4.6114, 4.6114 * 1.01), rel=1e-6)
    _check_provenance(axial[0], "strained")
    assert len(strain_series(li2o, [0.01], mode="shear")) == 3


def test_perturb_cells_seeded_and_bounded():
    li = make_supercell(load_prototype("Li"))
    a = perturb_cells(li, 3, max_strain=0.03, seed=7)
    b = perturb_cells(li, 3, max_strain=0.03, seed=7)
    for x, y in zip(a, b, strict=True):
        assert np.allclose(x.lattice.matrix, y.lattice.matrix)
        assert np.abs(np.asarray(x.properties["provenance"]["strain"])).max() <= 0.03
    assert not np.allclose(a[0].lattice.matrix, a[1].lattice.matrix)


@pytest.mark.parametrize("method", ["gaussian", "mc"])
def test_rattle_respects_guard(method):
    parent = make_supercell(load_prototype("Li2O"))
    guard = 1.7  # Å; the parent's shortest Li-O distance is 2.0 Å
    cells = rattle(parent, n_structures=2, stdev=0.15, method=method, min_distance=guard, seed=3, n_iter=3)
    for s in cells:
        assert min_distance(s) >= guard - 1e-6
        assert s.composition == parent.composition
        assert s.properties["provenance"]["rms_displacement"] > 0.02
        _check_provenance(s, "rattled")
    again = rattle(parent, n_structures=1, stdev=0.15, method=method, min_distance=guard, seed=3, n_iter=3)
    assert np.allclose(again[0].cart_coords, cells[0].cart_coords)
    with pytest.raises(StructureError, match="guard"):
        rattle(parent, min_distance=2.5)


def test_rattle_series_with_neighbouring_seeds_share_no_cell():
    parent = load_prototype("Li2O")
    a = rattle(parent, n_structures=6, stdev=0.1, seed=1)
    b = rattle(parent, n_structures=6, stdev=0.1, seed=2)
    gaps = [float(np.abs(x.cart_coords - y.cart_coords).max()) for x in a for y in b]
    assert min(gaps) > 0.01  # Å: seed + k would make five of the six cells identical


@pytest.fixture(scope="module")
def llzo():
    return load_prototype("LLZO-cubic")


def test_li_deficient_llzo(llzo):
    (cell,) = vacancies(llzo, "Li", target_fraction=0.9, seed=1)
    n_li = cell.composition["Li"]
    assert n_li == 56 - round(0.1 * 56)
    assert cell.composition["La"] == 24 and cell.composition["O"] == 96
    p = cell.properties["provenance"]
    assert p["net_charge"] == pytest.approx(-6.0) and p["charge_neutral"] is False
    _check_provenance(cell, "vacancy")
    (neutral,) = vacancies(llzo, "Li", target_fraction=0.9, compensation="anion", anion="O", seed=1)
    assert neutral.composition["O"] == 93 and neutral.properties["provenance"]["net_charge"] == 0.0


def test_co_and_ta_doped_llzo(llzo):
    (co,) = substitute(llzo, host="Li", dopant="Co", n_dopants=1, dopant_oxidation=3, seed=0)
    assert co.composition["Co"] == 1 and co.composition["Li"] == 56 - 1 - 2  # 2 Li vacancies per Co3+
    assert co.properties["provenance"]["charge_neutral"] is True
    _check_provenance(co, "doped")
    (ta,) = substitute(llzo, host="Zr", dopant="Ta", n_dopants=2, seed=0)  # Ta5+ on Zr4+: one Li vacancy each
    assert ta.composition["Ta"] == 2 and ta.composition["Zr"] == 14 and ta.composition["Li"] == 54
    assert ta.properties["provenance"]["net_charge"] == 0.0


def test_antisites_keep_composition():
    lco = make_supercell(load_prototype("LiCoO2"))
    (s,) = antisites(lco, "Li", "Co", n_pairs=2, seed=0)
    assert s.composition == lco.composition
    assert sum(a.specie.symbol != b.specie.symbol for a, b in zip(s, lco, strict=True)) == 4
    _check_provenance(s, "antisite")


def test_unknown_element_is_named(llzo):
    with pytest.raises(StructureError, match="co-doping: unknown element 'Qx'"):
        substitute(llzo, host="Li", dopant="Qx", entry="co-doping")
    with pytest.raises(StructureError, match="unknown element"):
        vacancies(llzo, "Xy", entry="bad")
