"""StructureSetMaker, the structure section, the preview command and the Makers."""

from __future__ import annotations

import json

import pytest
import yaml
from jobflow import run_locally
from typer.testing import CliRunner

from mlipflow.errors import ConfigError, StructureError
from mlipflow.structures import build_structure_set, load_prototype
from mlipflow.structures.cli import structures_app
from mlipflow.structures.jobs import AmorphousMaker, RattleMaker, StructureSetMaker
from mlipflow.structures.preview import preview

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
    assert responses[set_job.uuid][1].output["counts"] == {"strained": 2}


def test_shipped_example_section_validates():
    from pathlib import Path

    from mlipflow.structures import load_spec

    path = Path(__file__).resolve().parents[2] / "flows" / "structures_preview.yaml"
    spec = load_spec(path)
    assert {"interface", "grain_boundary", "amorphous", "mixture", "doping", "vacancy"} <= {
        e.kind for e in spec.entries
    }
