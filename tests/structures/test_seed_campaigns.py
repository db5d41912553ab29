"""The seed papers' campaign files in flows/: each validates; the structures of the CHGNet variants preview."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlipflow.campaign.loop import campaign_from_spec
from mlipflow.campaign.spec import load_campaign
from mlipflow.errors import ConfigError
from mlipflow.structures.preview import preview

FLOWS = Path(__file__).resolve().parents[2] / "flows"
SEEDS = ["campaign_llzo_lco", "campaign_li_lps", "campaign_lpscl"]


@pytest.mark.parametrize("name", [f"{s}{v}" for s in SEEDS for v in ("", "_chgnet")])
def test_seed_campaign_validates(name, monkeypatch):
    spec = load_campaign(FLOWS / f"{name}.yaml")
    assert spec.labeler.kind == ("surrogate" if name.endswith("_chgnet") else "vasp")
    if name.endswith("_chgnet"):
        assert spec.structures.max_atoms <= 130 and spec.explore.max_atoms <= 130  # CHGNet memory here
    elif shutil.which("vasp_std") is None:  # no VASP here: the preflight says so, a submit host goes on
        monkeypatch.delenv("MLIPFLOW_REMOTE_LABELER", raising=False)
        with pytest.raises(ConfigError, match=r"VASP labeler: .* not found on the PATH"):
            campaign_from_spec(spec).make()
        monkeypatch.setenv("MLIPFLOW_REMOTE_LABELER", "1")
    campaign_from_spec(spec).make()


@pytest.mark.slow
@pytest.mark.parametrize("name", [f"{s}_chgnet" for s in SEEDS])
def test_chgnet_variant_structures_preview(name, tmp_path):
    rows = preview(FLOWS / f"{name}.yaml", tmp_path)
    assert rows and all(r["atoms"] <= 130 for r in rows)
    assert not any("net charge" in r["note"] for r in rows if r["family"] in ("grain_boundary", "interface"))
