"""Slabs and grain boundaries."""

from __future__ import annotations

import pytest

from mlipflow.errors import StructureError
from mlipflow.structures import (
    build_grain_boundary,
    generate_slabs,
    list_gb_candidates,
    load_prototype,
    slab_candidates,
)
from mlipflow.structures.provenance import min_distance, vacuum_length


def test_licoo2_001_slabs_two_terminations():
    slabs = generate_slabs(load_prototype("LiCoO2"), miller_indices=[(0, 0, 1)], min_slab_size=10, min_vacuum_size=15)
    rows = slab_candidates(slabs)
    assert len({r.termination for r in rows}) >= 2
    for s, r in zip(slabs, rows, strict=True):
        assert s.composition.reduced_formula == "LiCoO2"  # stoichiometric (symmetrize=False)
        assert vacuum_length(s) >= 15.0 - 1e-6
        assert r.thickness >= 10.0 - 1e-6
        assert s.properties["provenance"]["family"] == "slab"
    assert any(r.polar for r in rows)  # Li|O-type terminations of the layered oxide are flagged polar


def test_symmetrize_drops_nonstoichiometric_slabs():
    slabs = generate_slabs(
        load_prototype("Li2O"), miller_indices=[(1, 1, 1)], symmetrize=True, require_stoichiometric=False
    )
    for s in slabs:
        flag = s.properties["provenance"]["stoichiometric"]
        assert flag == (s.composition.reduced_formula == "Li2O")


@pytest.fixture(scope="module")
def li2o():
    return load_prototype("Li2O")


def test_gb_candidates_listed_before_building(li2o):
    cands = list_gb_candidates(li2o, (1, 0, 0), max_sigma=13)
    sigmas = {c.sigma for c in cands}
    assert sigmas == {5, 13}
    s5 = [c for c in cands if c.sigma == 5]
    assert {tuple(sorted(map(abs, c.plane))) for c in s5} == {(0, 1, 2), (0, 1, 3)}
    assert s5[0].rotation_angle == pytest.approx(36.8699, abs=1e-3)
    assert s5[0].n_atoms_estimate == 2 * 5 * 12


def test_sigma5_tilt_gb_of_li2o(li2o):
    gb = build_grain_boundary(li2o, (1, 0, 0), sigma=5, plane=(0, -1, 3), min_grain_thickness=6.0, rm_ratio=0.7)
    p = gb.properties["provenance"]
    assert p["family"] == "grain_boundary"
    assert p["sigma"] == 5
    assert p["misorientation"] == pytest.approx(36.8699, abs=1e-3)
    assert sorted(map(abs, p["plane"])) == [0, 1, 3]
    assert p["grain_thickness"] >= 6.0
    assert p["n_boundaries"] == 2
    # (310): no atoms removed, stoichiometric and neutral
    assert gb.composition.reduced_formula == "Li2O" and p["stoichiometric"] and p["net_charge"] == 0.0
    guard = 0.7 * min_distance(li2o)  # the stated overlap rule: rm_ratio x shortest bulk bond
    assert min_distance(gb) >= guard - 1e-6


def test_overlap_removal_is_flagged(li2o):
    gb = build_grain_boundary(li2o, (1, 0, 0), sigma=5, plane=(0, -2, 1), min_grain_thickness=4.0)
    p = gb.properties["provenance"]
    if gb.composition.reduced_formula != "Li2O":  # Li2O Σ5(210) loses atoms: must be flagged as charged
        assert p["stoichiometric"] is False and p["net_charge"] != 0.0


def test_impossible_sigma_names_entry(li2o):
    with pytest.raises(StructureError, match=r"gb-111: Σ5 is impossible for rotation axis \[1, 1, 1\].*3, 7"):
        list_gb_candidates(li2o, (1, 1, 1), sigmas=[5], entry="gb-111")
    with pytest.raises(StructureError, match="Σ5 is impossible"):
        build_grain_boundary(li2o, (1, 1, 1), sigma=5, entry="x")


def test_gb_too_big(li2o):
    with pytest.raises(StructureError, match=r"big-gb.*max_atoms 100"):
        build_grain_boundary(li2o, (1, 0, 0), sigma=5, plane=(0, -1, 3), max_atoms=100, entry="big-gb")


def test_gb_on_noncubic_is_explained():
    with pytest.raises(StructureError, match="not cubic"):
        list_gb_candidates(load_prototype("LiCoO2"), (0, 0, 1))
