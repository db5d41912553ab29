"""A campaign whose labeler cannot run here stops before any job is queued, saying what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlipflow.campaign.loop import campaign_from_spec
from mlipflow.campaign.spec import load_campaign
from mlipflow.errors import ConfigError

TOY = Path(__file__).parents[2] / "flows" / "campaign_toy.yaml"


@pytest.mark.parametrize("kind", ["cp2k", "vasp"])
def test_campaign_with_a_missing_dft_code_fails_before_queueing(kind, tmp_path, monkeypatch):
    spec = load_campaign(TOY)
    spec = spec.model_copy(update={"labeler": spec.labeler.model_copy(update={"kind": kind, "calculator": None,
                                                                               "settings": {}})})
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ATOMATE2_CP2K_CMD", raising=False)
    monkeypatch.delenv("MLIPFLOW_REMOTE_LABELER", raising=False)
    with pytest.raises(ConfigError, match="not found on the PATH"):
        campaign_from_spec(spec)
    monkeypatch.setenv("MLIPFLOW_REMOTE_LABELER", "1")  # a submit host: the workers have the code
    assert campaign_from_spec(spec) is not None
