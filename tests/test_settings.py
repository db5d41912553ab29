"""Settings: environment over config file over defaults; wrong keys get a clear error."""

from __future__ import annotations

import pytest

from mlipflow.errors import ConfigError
from mlipflow.settings import load_settings


def test_defaults_env_and_file(mlipflow_home, monkeypatch):
    settings = load_settings()
    assert settings.home == mlipflow_home and settings.is_embedded
    mlipflow_home.mkdir(parents=True)
    (mlipflow_home / "config.yaml").write_text("database: fromfile\ntorch_threads: 2\n")
    assert load_settings().database == "fromfile"
    monkeypatch.setenv("MLIPFLOW_DATABASE", "fromenv")
    settings = load_settings()
    assert settings.database == "fromenv" and settings.torch_threads == 2


def test_unknown_key_in_config_file_is_named(mlipflow_home):
    mlipflow_home.mkdir(parents=True)
    (mlipflow_home / "config.yaml").write_text("mongo_uri: mongodb://x\n")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['mongo_uri'\]"):
        load_settings()


def test_wrong_type_is_named(monkeypatch):
    monkeypatch.setenv("MLIPFLOW_TORCH_THREADS", "many")
    with pytest.raises(ConfigError, match="torch_threads"):
        load_settings()
