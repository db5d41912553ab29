"""The one store factory: settings -> LaunchPad, JobStore and mlipflow's own collections.

Two back ends behind the same pymongo API, so that the code above is identical:

* **Production** (``MLIPFLOW_MONGODB_URI`` set): FireWorks ``LaunchPad`` in ``uri_mode``, a jobflow
  ``JobStore`` with a maggma ``MongoStore`` for documents and a ``GridFSStore`` as its ``data``
  additional store, and mlipflow's collections (frames, datasets, models, campaigns), all in one database.
  Nothing is patched on this path.
* **Embedded default** (no URI): the same objects over :class:`~mlipflow.embedded.EmbeddedMongoClient`,
  files under ``MLIPFLOW_HOME/store``, safe with several worker processes and threads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gridfs
from fireworks import LaunchPad
from fireworks.fw_config import GRIDFS_FALLBACK_COLLECTION
from jobflow import JobStore
from maggma.stores import GridFSStore, MongoStore
from pymongo import MongoClient

from mlipflow.embedded import EmbeddedMongoClient, enable_embedded_gridfs
from mlipflow.errors import StorageError
from mlipflow.settings import MlipflowSettings, load_settings

#: jobflow's document collection and the GridFS bucket of its ``data`` store
JOBS_COLLECTION = "outputs"
JOBS_DATA_BUCKET = "outputs_data"
#: mlipflow's own collections
FRAMES = "frames"
DATASETS = "datasets"
MODELS = "models"
CAMPAIGNS = "campaigns"
BLOBS_BUCKET = "mlipflow_blobs"


@functools.cache
def _embedded_client(path: str) -> EmbeddedMongoClient:
    """One embedded client per store directory and process (clients are thread-safe)."""
    return EmbeddedMongoClient(path)


def _client(settings: MlipflowSettings) -> Any:
    if settings.is_embedded:
        return _embedded_client(str(settings.store_dir))
    return _mongo_client(settings.mongodb_uri)


@functools.cache
def _mongo_client(uri: str) -> MongoClient:
    # 10 s to find the server, unless the URI says otherwise (keyword arguments would win over it)
    timeout = {} if "serverselectiontimeoutms" in uri.lower() else {"serverSelectionTimeoutMS": 10_000}
    return MongoClient(uri, **timeout)


class EmbeddedMongoStore(MongoStore):
    """maggma ``MongoStore`` over the embedded store directory ``path``.

    Parameters
    ----------
    path
        The embedded store directory (``MLIPFLOW_HOME/store``).
    database, collection_name
        As for ``MongoStore``.
    """

    def __init__(self, path: str, database: str, collection_name: str, **kwargs: Any) -> None:
        self.path = str(path)
        super().__init__(database=database, collection_name=collection_name, **kwargs)

    @property
    def name(self) -> str:
        return f"embedded://{self.path}/{self.database}/{self.collection_name}"

    def connect(self, force_reset: bool = False) -> None:
        if self._coll is None or force_reset:
            self._coll = _embedded_client(self.path)[self.database][self.collection_name]

    def close(self) -> None:
        # the client is shared by the process; closing it here would break the other users
        self._coll = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EmbeddedMongoStore) and (other.path, other.database, other.collection_name) == (
            self.path,
            self.database,
            self.collection_name,
        )

    def __hash__(self) -> int:
        return hash((self.path, self.database, self.collection_name))


class EmbeddedGridFSStore(GridFSStore):
    """maggma ``GridFSStore`` over the embedded store directory ``path`` (large job outputs)."""

    def __init__(self, path: str, database: str, collection_name: str, **kwargs: Any) -> None:
        self.path = str(path)
        super().__init__(database=database, collection_name=collection_name, **kwargs)

    @property
    def name(self) -> str:
        return f"embedded-gridfs://{self.path}/{self.database}/{self.collection_name}"

    def connect(self, force_reset: bool = False) -> None:
        if not self._coll or force_reset:
            enable_embedded_gridfs()
            db = _embedded_client(self.path)[self.database]
            self._coll = gridfs.GridFS(db, self.collection_name)
            self._files_collection = db[f"{self.collection_name}.files"]
            self._fs = MongoStore.from_collection(self._files_collection)
            self._fs.last_updated_field = f"metadata.{self.last_updated_field}"
            self._fs.key = self.key
            self._chunks_collection = db[f"{self.collection_name}.chunks"]

    def close(self) -> None:
        self._coll = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EmbeddedGridFSStore) and (other.path, other.database, other.collection_name) == (
            self.path,
            self.database,
            self.collection_name,
        )

    def __hash__(self) -> int:
        return hash((self.path, self.database, self.collection_name))


class EmbeddedLaunchPad(LaunchPad):
    """FireWorks ``LaunchPad`` over the embedded store directory ``path``.

    Parameters
    ----------
    path
        The embedded store directory.
    name
        Database name inside the store.
    **kwargs
        Passed to ``LaunchPad`` (``logdir``, ``strm_lvl``, ...).
    """

    def __init__(self, path: str, name: str = "mlipflow", **kwargs: Any) -> None:
        enable_embedded_gridfs()
        # LaunchPad builds a pymongo client in __init__; with connect=False it opens no socket and
        # starts no thread.  It is then replaced by the embedded client.
        kwargs.pop("host", None)
        kwargs.pop("uri_mode", None)
        client_kwargs = dict(kwargs.pop("mongoclient_kwargs", None) or {}, connect=False)
        super().__init__(
            host=f"mongodb://localhost/{name}", name=name, uri_mode=True, mongoclient_kwargs=client_kwargs, **kwargs
        )
        self.connection.close()
        self.path = str(path)
        self.connection = _embedded_client(self.path)
        self.db = self.connection[name]
        self.fireworks = self.db.fireworks
        self.launches = self.db.launches
        self.offline_runs = self.db.offline_runs
        self.fw_id_assigner = self.db.fw_id_assigner
        self.workflows = self.db.workflows
        if self.gridfs_fallback is not None:
            self.gridfs_fallback = gridfs.GridFS(self.db, GRIDFS_FALLBACK_COLLECTION)

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.update(path=self.path, host=None, uri_mode=False)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EmbeddedLaunchPad:
        return cls(d["path"], name=d.get("name") or "mlipflow", logdir=d.get("logdir"), strm_lvl=d.get("strm_lvl"))


@dataclass
class Stores:
    """Everything that lives in the store, built from one settings object.

    Attributes
    ----------
    settings
        The settings the stores were built from.
    db
        The pymongo ``Database`` (or the embedded one) holding all collections.
    """

    settings: MlipflowSettings
    db: Any

    @functools.cached_property
    def launchpad(self) -> LaunchPad:
        """The FireWorks LaunchPad (created on first use)."""
        return launchpad_from_settings(self.settings)

    @functools.cached_property
    def jobstore(self) -> JobStore:
        """The jobflow JobStore with its ``data`` large-data store, connected."""
        store = jobstore_from_settings(self.settings)
        store.connect()
        return store

    @functools.cached_property
    def blobs(self) -> gridfs.GridFS:
        """GridFS bucket for mlipflow's large files (models, trajectories)."""
        if self.settings.is_embedded:
            enable_embedded_gridfs()
        return gridfs.GridFS(self.db, BLOBS_BUCKET)

    def collection(self, name: str) -> Any:
        """Return one of mlipflow's collections by name (``frames``, ``datasets``, ...)."""
        return self.db[name]

    @property
    def frames(self) -> Any:
        return self.db[FRAMES]

    @property
    def datasets(self) -> Any:
        return self.db[DATASETS]

    @property
    def models(self) -> Any:
        return self.db[MODELS]

    @property
    def campaigns(self) -> Any:
        return self.db[CAMPAIGNS]

    def describe(self) -> str:
        """Say where the store is, without a password."""
        if self.settings.is_embedded:
            return f"embedded store at {self.settings.store_dir} (database '{self.settings.database}')"
        return f"MongoDB {redact_uri(self.settings.mongodb_uri)} (database '{self.settings.database}')"


#: URI options whose values are secrets (matched case-insensitively, anywhere in the option's name)
_SECRET_OPTIONS = ("password", "pwd", "secret", "token", "authmechanismproperties")


def _userinfo(uri: str) -> tuple[str, str, str, str] | None:
    """``(scheme://, user, password, rest)`` of a URI with credentials (``None`` without)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "", uri
    at, query = rest.rfind("@"), rest.find("?")
    if 0 <= query < at and "=" in rest[query:at]:  # an '@' among the options: the credentials end before them
        at = rest[:query].rfind("@")
    if at < 0:
        return None
    userinfo = rest[:at]  # a password with an unescaped '@', '/' or '?' stays inside
    user, _, password = userinfo.partition(":")
    return scheme + sep, user, password, rest[len(userinfo) + 1:]


def redact_uri(uri: str | None) -> str:
    """A MongoDB URI with its password and secret options masked, whatever its form (never raises)."""
    if not uri:
        return str(uri)
    text = str(uri)
    parts = _userinfo(text)
    if parts is not None:
        head, user, password, rest = parts
        text = f"{head}{user}{':***' if password else ''}@{rest}" if user else f"{head}***@{rest}"
    base, sep, query = text.partition("?")
    if sep:
        options = []
        for option in query.split("&"):
            name, eq, _ = option.partition("=")
            secret = eq and any(word in name.lower() for word in _SECRET_OPTIONS)
            options.append(f"{name}=***" if secret else option)
        text = base + sep + "&".join(options)
    return text


def redact_text(text: str, uri: str | None) -> str:
    """``text`` (an error message) with the URI and its password masked wherever they appear."""
    from urllib.parse import unquote

    if not uri:
        return text
    text = text.replace(uri, redact_uri(uri))
    parts = _userinfo(uri)
    password = parts[2] if parts else ""
    for secret in {password, unquote(password)} - {""}:
        text = text.replace(secret, "***")
    return text



def launchpad_from_settings(settings: MlipflowSettings) -> LaunchPad:
    """Build the FireWorks LaunchPad for ``settings``, initialising an empty database once.

    FireWorks needs its id counters (what ``lpad reset`` writes) before the first workflow.  They are
    created with an atomic upsert that never touches existing data, so any number of processes may
    call this at the same time on a fresh or a used database.
    """
    logdir = str(settings.home / "logs")
    Path(logdir).mkdir(parents=True, exist_ok=True)
    if settings.is_embedded:
        lp = EmbeddedLaunchPad(str(settings.store_dir), name=settings.database, logdir=logdir, strm_lvl="WARNING")
    else:
        lp = LaunchPad(
            host=settings.mongodb_uri, name=settings.database, uri_mode=True, logdir=logdir, strm_lvl="WARNING"
        )
    before = lp.fw_id_assigner.find_one_and_update(
        {}, {"$setOnInsert": {"next_fw_id": 1, "next_launch_id": 1}}, upsert=True
    )
    if before is None:  # this call created the counters: also build FireWorks' indexes
        lp.tuneup(bkground=False)
    return lp


def jobstore_from_settings(settings: MlipflowSettings) -> JobStore:
    """Build (not connect) the jobflow JobStore for ``settings``: documents + GridFS ``data`` store."""
    if settings.is_embedded:
        path = str(settings.store_dir)
        docs = EmbeddedMongoStore(path, settings.database, JOBS_COLLECTION)
        data = EmbeddedGridFSStore(path, settings.database, JOBS_DATA_BUCKET)
    else:
        docs = MongoStore(database=settings.database, collection_name=JOBS_COLLECTION, uri=settings.mongodb_uri)
        data = GridFSStore(database=settings.database, collection_name=JOBS_DATA_BUCKET, uri=settings.mongodb_uri)
    return JobStore(docs, additional_stores={"data": data})


def get_stores(settings: MlipflowSettings | None = None) -> Stores:
    """Return the stores for ``settings`` (default: loaded from the environment and config file).

    Raises
    ------
    StorageError
        If the MongoDB server cannot be reached.
    """
    settings = settings or load_settings()
    if settings.is_embedded:
        settings.store_dir.mkdir(parents=True, exist_ok=True)
    try:
        db = _client(settings)[settings.database]
        if not settings.is_embedded:
            db.command("ping")
    except Exception as exc:  # pymongo raises many kinds; say what and where
        reason = redact_text(" ".join(str(exc).split()), settings.mongodb_uri)
        raise StorageError(f"cannot reach the store {redact_uri(settings.mongodb_uri)}: {reason}") from None
    return Stores(settings=settings, db=db)
