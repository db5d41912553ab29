"""YAML inputs: typos and wrong types are reported with the key path and the line."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from mlipflow.errors import ConfigError
from mlipflow.yamlio import load_yaml_model


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lower: float
    upper: float


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    temperatures: list[float]
    windows: dict[str, Window] = {}


def test_valid_file_loads(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ntemperatures: [300, 600]\nwindows:\n  gb: {lower: 0.05, upper: 0.3}\n")
    assert load_yaml_model(path, Spec).windows["gb"].upper == 0.3


def test_typo_is_named_with_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ntemperatures: [300]\nwindows:\n  gb:\n    lower: 0.05\n    uper: 0.3\n")
    with pytest.raises(ConfigError) as err:
        load_yaml_model(path, Spec)
    text = str(err.value)
    assert f"{path}:6: windows.gb.uper: unknown key" in text
    assert f"{path}:4: windows.gb.upper: Field required" in text


def test_wrong_type_is_named_with_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ntemperatures:\n  - 300\n  - hot\n")
    with pytest.raises(ConfigError, match=r"c.yaml:4: temperatures.1: Input should be a valid number"):
        load_yaml_model(path, Spec)


def test_broken_yaml_and_missing_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: [x\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml_model(path, Spec)
    with pytest.raises(ConfigError, match="no such file"):
        load_yaml_model(tmp_path / "nope.yaml", Spec)
