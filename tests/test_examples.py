"""The example files shipped inside the package: listed, found by name, copied as real files, run by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlipflow.campaign.spec import load_campaign
from mlipflow.errors import ConfigError
from mlipflow.examples import copy_examples, example_path, list_examples

ROOT = Path(__file__).resolve().parents[1]


def test_the_flagship_campaigns_are_in_the_package():
    examples = {e.name: e for e in list_examples()}
    assert {"li2o", "toy", "structures_preview"} <= set(examples)
    assert examples["li2o"].kind == "campaign" and examples["li2o"].campaign == "li2o-gb"
    assert examples["structures_preview"].kind == "structures"
    assert "src/mlipflow/examples" in str(examples["li2o"].path)
    # the package's files are the repository's flows/ files (one home), and valid campaigns
    assert examples["li2o"].path.read_text() == (ROOT / "flows" / "campaign_li2o.yaml").read_text()
    assert load_campaign(example_path("li2o-gb")).name == "li2o-gb"
    assert example_path("toy", kind="campaign").name == "campaign_toy.yaml"
    with pytest.raises(ConfigError, match=r"no example 'nope'; the shipped campaign examples are: li2o, toy"):
        example_path("nope", kind="campaign")


def test_copy_writes_real_files_and_refuses_to_overwrite(tmp_path):
    written = copy_examples(tmp_path / "mine", ["toy"])
    assert [p.name for p in written] == ["campaign_toy.yaml"] and not written[0].is_symlink()
    assert load_campaign(written[0]).name == "toy"
    with pytest.raises(ConfigError, match="exists; pass --force"):
        copy_examples(tmp_path / "mine", ["toy"])
    assert copy_examples(tmp_path / "mine", ["toy"], overwrite=True) == written


def test_examples_command_and_run_example_from_anywhere(tmp_path):
    env = dict(os.environ, COLUMNS="100")
    cmd = [sys.executable, "-m", "mlipflow"]
    listed = subprocess.run([*cmd, "examples"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert listed.returncode == 0 and "mlipflow run --example li2o" in listed.stdout
    copied = subprocess.run([*cmd, "examples", "li2o", "--copy", "here"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert copied.returncode == 0 and (tmp_path / "here" / "campaign_li2o.yaml").is_file()
    wrong = subprocess.run([*cmd, "run", "--example", "nope"], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=120)
    assert wrong.returncode == 1 and "no example 'nope'" in wrong.stderr and "Traceback" not in wrong.stderr
