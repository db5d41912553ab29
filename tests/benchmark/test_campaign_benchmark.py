"""The benchmark stage on a finished campaign: `mlipflow benchmark NAME` fills every section of the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlipflow.benchmark.report import MISSING, SECTIONS
from mlipflow.campaign.spec import CampaignSpec

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "flows" / "campaign_toy.yaml").read_text())


def _cli(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlipflow", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def test_benchmark_of_a_campaign_fills_every_report_section(stores, tmp_path):
    from mlipflow.campaign.runner import run_campaign

    spec = {**SPEC, "name": "toy-bench",
            "structures": {**SPEC["structures"], "entries": [
                *SPEC["structures"]["entries"],
                {"name": "bulk", "kind": "bulk", "material": "Li2O", "min_length": 4.0}]},
            "sampling": {**SPEC["sampling"], "reference_md": {
                "entries": ["bulk"], "temperatures": [300.0], "n_steps": 20, "record_every": 4, "equilibration": 4,
                "replicas": 2}},
            "convergence": {**SPEC["convergence"], "max_iterations": 1},
            "benchmark": {**SPEC["benchmark"], "enabled": False, "property_md_steps": 40}}
    doc = run_campaign(stores, CampaignSpec(**spec), root_dir=tmp_path)
    assert doc["state"] == "max_iterations" and "benchmark" not in doc  # the stage was switched off
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="200")
    missing = _cli("benchmark", "no-such-model", env=env, cwd=tmp_path)
    assert missing.returncode == 1 and "neither a campaign nor a registered model" in missing.stderr
    assert "Traceback" not in missing.stderr
    done = _cli("benchmark", "toy-bench", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "benchmark of" in done.stdout and "MLMD test set" in done.stdout
    bench = stores.campaigns.find_one({"_id": "toy-bench"})["benchmark"]
    names = [c["name"] for c in bench["verdict"]["checks"]]
    assert "force RMSE on the MLMD test set" in names
    assert "largest RDF first-peak shift against the reference MD" in names
    prop = bench["properties"][0]
    assert prop["temperature_K"] == 300.0 and prop["frames_reference"] == 2 * 5  # both replicas are the reference
    assert set(prop["rdf_peaks_reference_A"]) >= {"Li-O", "Li-Li", "O-O"}
    assert bench["stability"] and bench["speed"]
    status = _cli("status", "toy-bench", "--json", env=env, cwd=tmp_path)
    if status.returncode == 0 and status.stdout.strip().startswith("{"):
        parsed = json.loads(status.stdout)
        assert parsed["benchmark"]["trajectory_errors"]["rmse_f_meV_A"] > 0
    out = tmp_path / "report.html"
    rep = _cli("report", "toy-bench", "--out", str(out), env=env, cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr[-2000:]
    html = out.read_text()
    for sid in SECTIONS:
        body = html.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]
        assert MISSING not in body, f"section {sid} says not yet measured"
    assert "verdict" in html and "MLMD-trajectory test set" in html


def test_relative_trust_needs_a_validation_split(tmp_path):
    from mlipflow.campaign.spec import load_campaign
    from mlipflow.errors import ConfigError

    spec = {**SPEC, "splits": {"train": 1.0}, "selection": {**SPEC["selection"], "trust_mode": "relative"}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ConfigError, match=r"splits.valid: MACE training needs valid frames"):
        load_campaign(path)
    spec["splits"] = {"train": 0.8, "valid": 0.2}
    spec["sampling"] = {**spec["sampling"], "reference_md": {"entries": ["no-such-entry"]}}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ConfigError, match=r"sampling.reference_md.entries: no structures entry named"):
        load_campaign(path)
    del spec["sampling"]["reference_md"]
    spec["selection"]["descriptor"] = "soap-focus"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ConfigError, match="descriptor"):
        load_campaign(path)
