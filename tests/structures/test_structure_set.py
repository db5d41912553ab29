"""StructureSetMaker, the structure section, the preview command and the Makers."""

from __future__ import annotations

import json

import pytest
import yaml
from jobflow import run_locally
from typer.testing import CliRunner

from mlipflow.errors import ConfigError, StructureError
from mlipflow.structures import build_structure_set, load_prototype, load_spec
from mlipflow.structures.cli import structures_app
from mlipflow.structures.jobs import AmorphousMaker, RattleMaker, StructureSetMaker
from mlipflow.structures.preview import preview
from mlipflow.structures.structure_set import section_elements

SECTION = {
    "max_atoms": 400,
    "cutoff": 4.0,
    "materials": {"Li2O": {"prototype": "Li2O"}, "LPS": {"prototype": "Li3PS4"}},
    "entries": [
        {"name": "strain", "kind": "strain", "material": "Li2O", "strains": [-0.01, 0.01]},
        {"name": "rattle", "kind": "rattle", "material": "Li2O", "n_structures": 2, "seed": 1},
        {"name": "vac", "kind": "vacancy", "material": "Li2O", "target_fraction": 0.9, "compensation": "anion"},
        {
            "name": "gb",
            "kind": "grain_boundary",
            "material": "Li2O",
            "sigmas": [5],
            "max_candidates": 1,
            "min_grain_thickness": 4,
        },
        {"name": "amo", "kind": "amorphous", "material": "LPS", "n_atoms": 48},
    ],
}


def test_structure_set_counts_and_provenance():
    result = build_structure_set(SECTION)
    assert result.counts == {"strained": 2, "rattled": 2, "vacancy": 1, "grain_boundary": 1, "amorphous": 1}
    for s in result.structures:
        p = s.properties["provenance"]
        assert {"family", "generator", "parameters", "parent", "entry"} <= set(p)
        json.dumps(p)
    assert [r["entry"] for r in result.rows][:2] == ["strain", "strain"]
    assert result.rows[5]["sigma"] == 5


def test_too_big_cell_names_the_entry():
    section = {**SECTION, "max_atoms": 50}
    with pytest.raises(StructureError, match=r"strain.*max_atoms 50"):
        build_structure_set(section)


def test_spec_rejects_unknown_keys_and_materials():
    bad = {**SECTION, "entries": [{"name": "x", "kind": "strain", "material": "Li2O", "strians": [0.1]}]}
    with pytest.raises(ConfigError, match="strians"):
        build_structure_set(bad)
    bad = {**SECTION, "entries": [{"name": "x", "kind": "strain", "material": "LCO"}]}
    with pytest.raises(ConfigError, match="'x' refers to material 'LCO'"):
        build_structure_set(bad)
    bad = {**SECTION, "entries": [{"name": "d", "kind": "doping", "material": "Li2O", "host": "Li", "dopant": "Zz"}]}
    with pytest.raises(StructureError, match="d: unknown element 'Zz'"):
        build_structure_set(bad)


def test_preview_writes_cif_and_extxyz(tmp_path):
    path = tmp_path / "section.yaml"
    path.write_text(yaml.safe_dump({"structures": SECTION}))
    rows = preview(path, tmp_path / "out")
    assert len(rows) == 7
    from ase.io import read
    from pymatgen.core import Structure

    for r in rows:
        assert Structure.from_file(r["cif"]).composition.reduced_formula == r["formula"]
        atoms = read(r["extxyz"])
        assert len(atoms) == r["atoms"]
        assert json.loads(atoms.info["provenance"])["family"] == r["family"]
    result = CliRunner().invoke(structures_app, ["preview", str(path), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "grain_boundary" in result.output


def test_makers_run_in_jobflow():
    li2o = load_prototype("Li2O")
    rattle_job = RattleMaker(n_structures=2, seed=5).make(li2o)
    amo_job = AmorphousMaker(n_atoms=32).make(load_prototype("Li3PS4"))
    set_job = StructureSetMaker(spec={**SECTION, "entries": SECTION["entries"][:1]}).make()
    from jobflow import Flow

    responses = run_locally(Flow([rattle_job, amo_job, set_job]), ensure_success=True)
    out = responses[rattle_job.uuid][1].output
    assert len(out) == 2 and out[0].properties["provenance"]["family"] == "rattled"
    assert responses[amo_job.uuid][1].output[0].properties["provenance"]["family"] == "amorphous"
    assert responses[set_job.uuid][1].output.counts == {"strained": 2}


def test_shipped_example_section_validates():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "flows" / "structures_preview.yaml"
    spec = load_spec(path)
    assert {"interface", "grain_boundary", "amorphous", "mixture", "doping", "vacancy"} <= {
        e.kind for e in spec.entries
    }


# --- the user's own structures, errors with file and line, one dispatch -----------------------------------------


def _write_cif(path, structure):
    structure.to(filename=str(path))
    return path


@pytest.mark.parametrize("key", ["file", "cif", "path", "structure"])
def test_a_section_built_from_a_user_cif(tmp_path, key):
    from pymatgen.core import Lattice, Structure

    cif = _write_cif(tmp_path / "my_li2o.cif", Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.62), ["O", "Li"], [(0, 0, 0), (0.25, 0.25, 0.25)]))
    path = tmp_path / "section.yaml"
    path.write_text(yaml.safe_dump({"structures": {
        "max_atoms": 200, "cutoff": 3.0, "materials": {"mine": {key: "my_li2o.cif"}},  # relative to the YAML file
        "entries": [{"name": "strain", "kind": "strain", "material": "mine", "strains": [-0.02, 0.02]},
                    {"name": "gb", "kind": "grain_boundary", "material": "mine", "sigmas": [5],
                     "max_candidates": 1, "min_grain_thickness": 4}]}}))
    result = build_structure_set(path)
    assert result.counts == {"strained": 2, "grain_boundary": 1}
    assert result.structures[2].properties["provenance"]["parent"] == f"file {cif.name}"
    assert [r["strain"] for r in result.rows[:2]] == [-0.02, 0.02]  # signed in the preview table


def test_preview_prints_the_strain_sign(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"max_atoms": 100, "cutoff": 3.0, "materials": {"Li2O": {"prototype": "Li2O"}},
                                    "entries": [{"name": "s", "kind": "strain", "material": "Li2O",
                                                 "strains": [-0.02, 0.02], "supercell": False}]}))
    result = CliRunner().invoke(structures_app, ["preview", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "-0.0200" in result.output and "0.0200" in result.output


def test_wrong_key_for_a_user_cif_lists_the_allowed_keys(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("max_atoms: 100\nmaterials:\n  mine: {cif_file: x.cif}\nentries: []\n")
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert f"{path}:3: materials.mine" in text and "cif_file" in text and "prototype, file, order" in text
    assert "Extra inputs" not in text and "errors.pydantic.dev" not in text


@pytest.mark.parametrize("content", ["data_x\n_cell_length_a 4.0\n", "garbage \x00\x01 not a cif", ""])
def test_a_truncated_or_garbage_cif_gives_one_line(tmp_path, content):
    (tmp_path / "bad.cif").write_text(content)
    path = tmp_path / "s.yaml"
    path.write_text("materials:\n  mine: {file: bad.cif}\nentries:\n"
                    "  - {name: r, kind: rattle, material: mine}\n")
    with pytest.raises(StructureError) as err:
        build_structure_set(path)
    text = str(err.value)
    assert "\n" not in text and "material 'mine'" in text and "bad.cif" in text


def test_partial_occupancy_needs_an_ordering_rule(tmp_path):
    from pymatgen.core import Lattice, Structure

    avg = Structure.from_spacegroup("F-43m", Lattice.cubic(9.8598), ["P", "S", "S", "Cl", {"Li": 0.5}],
                                    [(0.5, 0.5, 0.5), (0.619, 0.619, 0.619), (0.25, 0.25, 0.25), (0, 0, 0),
                                     (0.686, 0.982, 0.314)])
    _write_cif(tmp_path / "avg.cif", avg)
    section = {"materials": {"lpscl": {"file": str(tmp_path / "avg.cif")}},
               "entries": [{"name": "b", "kind": "bulk", "material": "lpscl", "supercell": False}]}
    with pytest.raises(StructureError, match=r"partial occupancies.*order: \{seed: 0\}"):
        build_structure_set(section)
    section["materials"]["lpscl"]["order"] = {"seed": 1}
    cells = build_structure_set(section).structures
    assert cells[0].composition.reduced_formula == "Li6PS5Cl" and cells[0].is_ordered


def test_build_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("materials: {Li2O: {prototype: Li2O}}\nentries:\n"
                    "  - {name: ok, kind: strain, material: Li2O, supercell: false}\n"
                    "  - {name: gb3, kind: grain_boundary, material: Li2O, rotation_axis: [1, 1, 1], sigmas: [5]}\n")
    with pytest.raises(StructureError, match=rf"^{path}:4: gb3: Σ5 is impossible"):
        build_structure_set(path)


def test_section_elements_reads_materials_and_dopants_only():
    section = {"materials": {"LLZO": {"prototype": "LLZO-cubic"}, "unused": {"prototype": "Li2S"}},
               "entries": [{"name": "d", "kind": "doping", "material": "LLZO", "host": "Zr", "dopant": "Ta"}]}
    assert section_elements(section) == {"Li", "La", "Zr", "O", "Ta"}


def test_every_entry_kind_maps_onto_a_structure_maker():
    from typing import get_args

    from mlipflow.structures import jobs
    from mlipflow.structures.structure_set import Entry

    kinds = get_args(get_args(Entry)[0])
    dummy = {"name": "x", "material": "m", "species": ("Li", "O"), "phases": ("a", "b"), "host": "Li", "dopant": "Co",
             "film": "a", "substrate": "b", "film_miller": (0, 0, 1), "substrate_miller": (0, 0, 1)}
    makers = {type(k.model_construct(**{f: v for f, v in dummy.items() if f in k.model_fields}).maker(5.0, 100))
              for k in kinds}
    generators = {m for m in vars(jobs).values() if isinstance(m, type) and hasattr(m, "generate")}
    # every generator Maker is reachable from some entry kind (InterdiffusionMaker through interface entries)
    assert generators - makers == {jobs.InterdiffusionMaker}


def test_bulk_entry_keeps_its_own_min_length():
    section = {"cutoff": 3.0, "materials": {"Li2O": {"prototype": "Li2O"}},
               "entries": [{"name": "small", "kind": "bulk", "material": "Li2O", "min_length": 4.0},
                           {"name": "default", "kind": "bulk", "material": "Li2O"}]}
    small, default = build_structure_set(section).structures
    assert len(small) == 12 and len(default) == 96  # 4.6 Å cell >= 4 Å; 2 x cutoff = 6 Å needs 2x2x2
