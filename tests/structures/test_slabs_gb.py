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
from mlipflow.structures.bonds import closest_violation, pair_floors, shortest_pair_distances
from mlipflow.structures.grain_boundaries import TranslationSearch, grain_boundary_translations
from mlipflow.structures.provenance import vacuum_length


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


def _check_sound(gb, bulk, fraction=0.8):
    """Neutral, stoichiometric, and no pair closer than ``fraction`` x its bulk distance."""
    p = gb.properties["provenance"]
    assert p["net_charge"] == 0.0 and p["stoichiometric"]
    assert gb.composition.reduced_composition == bulk.composition.reduced_composition
    ref = shortest_pair_distances(bulk, 8.0)
    floors = pair_floors(ref, {e.symbol for e in bulk.composition}, fraction)
    ratio, i, j, d = closest_violation(gb, floors)
    assert ratio >= 1.0, f"{gb[i].specie}-{gb[j].specie} at {d:.3f} Å"


@pytest.mark.parametrize("plane", [(0, -2, 1), (0, -1, 3)])
def test_li2o_sigma5_tilt_is_neutral_and_free_of_overlaps(li2o, plane):
    gb = build_grain_boundary(li2o, (1, 0, 0), sigma=5, plane=plane, min_grain_thickness=5.0)
    p = gb.properties["provenance"]
    assert p["family"] == "grain_boundary" and p["sigma"] == 5 and p["gb_type"] == "tilt"
    assert p["misorientation"] == pytest.approx(36.8699, abs=1e-3)
    assert sorted(map(abs, p["plane"])) == sorted(map(abs, plane))
    assert p["grain_thickness"] >= 5.0 and p["n_boundaries"] == 2
    assert len(gb) == 120 and gb.composition.formula == "Li80 O40"  # the main job's cells (formerly Li72O40)
    assert p["removed_formula_units"] == 0 and p["search_counts"]["passed_overlap_rule"] > 0
    _check_sound(gb, li2o)


def test_sigma_only_gives_the_tilt_boundary_and_twist_on_request(li2o):
    tilt = build_grain_boundary(li2o, (1, 0, 0), sigma=5, min_grain_thickness=4.0)
    assert tilt.properties["provenance"]["gb_type"] == "tilt"
    assert tilt.properties["provenance"]["plane"] != [1, 0, 0]
    twist = build_grain_boundary(li2o, (1, 1, 1), sigma=3, gb_type="twist", min_grain_thickness=5.0)
    p = twist.properties["provenance"]
    assert p["gb_type"] == "twist" and p["plane"] is None and p["sigma"] == 3
    _check_sound(twist, li2o)


def test_sigma3_tilt_of_li2o(li2o):
    gb = build_grain_boundary(li2o, (1, 1, 0), sigma=3, plane=(1, -1, 2), min_grain_thickness=5.0)
    assert gb.properties["provenance"]["sigma"] == 3
    _check_sound(gb, li2o)


def test_licoo2_twist_boundary_through_the_rhombohedral_lattice():
    lco = load_prototype("LiCoO2")
    cands = list_gb_candidates(lco, (0, 0, 1), max_sigma=13, gb_type="twist")
    assert [c.sigma for c in cands] == [3, 7, 13]
    gb = build_grain_boundary(lco, (0, 0, 1), sigma=7, gb_type="twist", min_grain_thickness=8.0)
    assert len(gb) == 112 and gb.properties["provenance"]["gb_type"] == "twist"
    _check_sound(gb, lco)
    with pytest.raises(StructureError, match=r"tilt planes are enumerated for cubic lattices only.*twist"):
        list_gb_candidates(lco, (0, 0, 1), gb_type="tilt")


def test_translation_search_keeps_distinct_translations_and_is_deterministic(li2o):
    search = TranslationSearch(n_keep=3, expansions=(0.0, 0.5))
    a = grain_boundary_translations(li2o, (1, 0, 0), sigma=5, plane=(0, -1, 3), min_grain_thickness=4.0,
                                    search=search)
    b = grain_boundary_translations(li2o, (1, 0, 0), sigma=5, plane=(0, -1, 3), min_grain_thickness=4.0,
                                    search=search)
    energies = [s.properties["provenance"]["coulomb_energy_eV"] for s in a]
    assert len(a) == 3 and energies == sorted(energies) and len(set(energies)) == 3
    assert [s.properties["provenance"]["translation"] for s in a] == [
        s.properties["provenance"]["translation"] for s in b]


def test_translation_search_ranks_with_a_calculator(li2o):
    """The machinery of surrogate ranking, with a cheap ASE calculator (CHGNet in bench/ and the slow tests)."""
    from ase.calculators.lj import LennardJones

    search = TranslationSearch(rank_by=LennardJones(sigma=1.8, epsilon=0.01, rc=5.0), n_keep=2, max_evaluations=4,
                               expansions=(0.0, 0.5), relax_steps=3)
    cells = grain_boundary_translations(li2o, (1, 0, 0), sigma=5, plane=(0, -1, 3), min_grain_thickness=4.0,
                                        search=search)
    assert len(cells) == 2
    for s in cells:
        assert isinstance(s.properties["provenance"]["gb_energy_J_m2"], float)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["Li2O-210", "Li2O-310", "Li2O-S3", "LiCoO2-S7"])
def test_surrogate_gb_energy_after_the_search_is_physical(case, chgnet):
    """After a CHGNet-ranked translation search: γ between 0.1 and 3 J/m² (unrelaxed), neutral, no overlap."""
    name, axis, sigma, plane, gb_type, thickness = {
        "Li2O-210": ("Li2O", (1, 0, 0), 5, (0, -2, 1), "tilt", 5.0),
        "Li2O-310": ("Li2O", (1, 0, 0), 5, (0, -1, 3), "tilt", 5.0),
        "Li2O-S3": ("Li2O", (1, 1, 0), 3, (1, -1, 2), "tilt", 5.0),
        "LiCoO2-S7": ("LiCoO2", (0, 0, 1), 7, None, "twist", 8.0),
    }[case]
    bulk = load_prototype(name)
    gb = build_grain_boundary(bulk, axis, sigma=sigma, plane=plane, gb_type=gb_type, min_grain_thickness=thickness,
                              search=TranslationSearch(rank_by=chgnet, max_evaluations=6))
    assert len(gb) <= 130
    _check_sound(gb, bulk)
    assert 0.1 < gb.properties["provenance"]["gb_energy_J_m2"] < 3.0


@pytest.mark.slow
@pytest.mark.parametrize("axis,sigma,plane", [((1, 1, 0), 3, (1, -1, 2)), ((1, 0, 0), 5, (0, -1, 3))])
def test_llzo_boundaries_are_neutral_and_free_of_overlaps(axis, sigma, plane):
    """LLZO Σ3/Σ5 cells hold 1152-1920 atoms: structure checks only (no CHGNet above ~130 atoms here)."""
    llzo = load_prototype("LLZO-cubic")
    gb = build_grain_boundary(llzo, axis, sigma=sigma, plane=plane, min_grain_thickness=4.0,
                              search=TranslationSearch(expansions=(0.0, 0.5), in_plane_step=1.0))
    _check_sound(gb, llzo)


def test_impossible_sigma_names_entry(li2o):
    with pytest.raises(StructureError, match=r"gb-111: Σ5 is impossible for rotation axis \[1, 1, 1\].*3, 7"):
        list_gb_candidates(li2o, (1, 1, 1), sigmas=[5], entry="gb-111")
    with pytest.raises(StructureError, match="Σ5 is impossible"):
        build_grain_boundary(li2o, (1, 1, 1), sigma=5, entry="x")


def test_gb_too_big(li2o):
    with pytest.raises(StructureError, match=r"big-gb.*max_atoms 100"):
        build_grain_boundary(li2o, (1, 0, 0), sigma=5, plane=(0, -1, 3), max_atoms=100, entry="big-gb")
