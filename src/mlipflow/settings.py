"""Settings of mlipflow: ``MLIPFLOW_*`` environment variables over one YAML config file.

The config file is ``$MLIPFLOW_CONFIG`` when set, else ``config.yaml`` inside ``MLIPFLOW_HOME``.
Environment variables win over the file; the file wins over the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import platformdirs
import yaml
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mlipflow.errors import ConfigError

ENV_PREFIX = "MLIPFLOW_"


def default_home() -> Path:
    """Return the per-user data directory used when ``MLIPFLOW_HOME`` is not set."""
    return platformdirs.user_data_path("mlipflow")


def config_file_path() -> Path:
    """Return the path of the config file that applies now (it may not exist)."""
    if os.environ.get(ENV_PREFIX + "CONFIG"):
        return Path(os.environ[ENV_PREFIX + "CONFIG"]).expanduser()
    home = Path(os.environ.get(ENV_PREFIX + "HOME") or default_home()).expanduser()
    return home / "config.yaml"


class _YamlFileSource(PydanticBaseSettingsSource):
    """Read settings from the config file, refusing unknown keys with the file's name."""

    def get_field_value(self, field, field_name):  # pragma: no cover - not used, __call__ is
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = config_file_path()
        if not path.is_file():
            return {}
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")
        unknown = sorted(set(data) - set(self.settings_cls.model_fields))
        if unknown:
            known = ", ".join(sorted(self.settings_cls.model_fields))
            raise ConfigError(f"config file {path}: unknown setting(s) {unknown}; known settings: {known}")
        return data


class MlipflowSettings(BaseSettings):
    """All settings of mlipflow.

    Parameters
    ----------
    home
        Data directory of the embedded store, launch directories and reports (``MLIPFLOW_HOME``).
    mongodb_uri
        A MongoDB connection string.  When set, the production store is used (FireWorks LaunchPad,
        jobflow JobStore with GridFS, mlipflow's collections, all in ``database``); when unset, the
        embedded store under ``home`` serves the same pymongo API.
    database
        Database name on the server (or inside the embedded store).
    cpu_category, gpu_category
        FireWorks categories for DFT/labeling jobs and for training/MD jobs.
    torch_threads
        Threads torch may use for inference and training (1 is fastest on a busy 2-core machine).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    home: Path = Field(default_factory=default_home)
    mongodb_uri: str | None = None
    database: str = "mlipflow"
    cpu_category: str = "cpu"
    gpu_category: str = "gpu"
    torch_threads: int = Field(default=1, ge=1)
    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlFileSource(settings_cls)

    @property
    def is_embedded(self) -> bool:
        """True when no MongoDB URI is configured and the embedded store is used."""
        return not self.mongodb_uri

    @property
    def store_dir(self) -> Path:
        """Directory of the embedded store's files."""
        return self.home / "store"


def load_settings(**overrides: Any) -> MlipflowSettings:
    """Load the settings, turning validation problems into a :class:`ConfigError`.

    Parameters
    ----------
    **overrides
        Values that win over the environment and the config file.
    """
    try:
        settings = MlipflowSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid mlipflow settings ({config_file_path()} or MLIPFLOW_*): {problems}") from exc
    settings.home = settings.home.expanduser().absolute()
    return settings
