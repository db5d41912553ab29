"""The embedded store: a pymongo-compatible database in SQLite files, safe across processes and threads.

No MongoDB server can be installed on a laptop-like machine without downloads, so the default store of
mlipflow is ``litemongo`` (pinned at 0.2.0): mongomock's query engine over one SQLite file per
collection, in process, no port.  As shipped it is not safe when several processes or threads use the
same files (FireWorks' reservation is a read-then-write that two workers can interleave, and SQLite
connections refuse to be used from a second thread).  This module adds the two things that make it
safe, without touching litemongo's modules:

* one lock per store directory and process (a re-entrant thread lock) held together with an exclusive
  ``flock`` on ``<dir>/.lock`` around every collection operation, so that each pymongo call, including
  ``find_one_and_update``, is atomic across processes and threads;
* SQLite connections opened with ``check_same_thread=False`` (safe because of the lock above), so that
  FireWorks' ping thread and the Flask dashboard can use the same client.

Cursors are materialised under the lock, so a reader never sees half of another process's write.

It also keeps the parts of MongoDB's contract that FireWorks, maggma and mlipflow rely on:

* documents over 16 MiB (:data:`MAX_BSON_SIZE`) are refused as MongoDB refuses them: ``DocumentTooLarge``
  for an insert or a replacement (and an update document) that large, ``WriteError`` code 17419 for an
  update whose result would be; nothing is written.  FireWorks' GridFS fallback for large launches and
  maggma's ``safe_update`` then run as they do in production;
* ``client.max_bson_size`` and the ``hello`` command report the limit;
* a client is per process: used in a process forked after it was opened, it re-opens its SQLite
  connections and takes a lock of its own (a forked child shares its parent's ``flock`` and must never
  use its parent's SQLite connections; both lost updates).
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, ClassVar

import bson
from litemongo import client as _lm_client
from litemongo import sqlite_store as _lm_sqlite
from litemongo._vendor.mongomock import indexing as _mm_indexing
from litemongo._vendor.mongomock.collection import Collection as _MockCollection
from litemongo._vendor.mongomock.database import Database as _MockDatabase
from litemongo._vendor.mongomock.thread import RWLock as _RWLock
from pymongo.errors import DocumentTooLarge, WriteError

__all__ = ["MAX_BSON_SIZE", "EmbeddedMongoClient", "StoreLock", "enable_embedded_gridfs"]

#: MongoDB's largest document (bytes of BSON), as ``hello`` reports it
MAX_BSON_SIZE = 16 * 1024 * 1024
#: MongoDB's largest message and write batch, as ``hello`` reports them
MAX_MESSAGE_SIZE = 48_000_000
MAX_WRITE_BATCH_SIZE = 100_000
#: SQLite connections inherited from a parent process: never used or closed in the child (closing them
#: could checkpoint or unlink files the parent still works with), only kept from the garbage collector
_INHERITED: list[sqlite3.Connection] = []


def _too_large(size: int) -> DocumentTooLarge:
    return DocumentTooLarge(f"BSON document too large ({size} bytes) - the connected server supports BSON "
                            f"document sizes up to {MAX_BSON_SIZE} bytes.")

#: the change-log table of every collection file (document ids written, in commit order)
CHANGES = "mlipflow_changes"
#: changes kept in the log once it is pruned
CHANGES_KEPT = 20000


class StoreLock:
    """A re-entrant lock shared by all threads of a process and all processes using one directory.

    Parameters
    ----------
    path
        The store directory; the lock file is ``path/.lock``.
    """

    _registry: ClassVar[dict[tuple[int, str], StoreLock]] = {}
    _registry_guard = threading.Lock()

    @classmethod
    def _after_fork(cls) -> None:
        """In a forked child: the parent's threads are gone, a guard they held must not stay held."""
        cls._registry_guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @classmethod
    def for_directory(cls, path: Path) -> StoreLock:
        """Return this process's lock for ``path`` (one per directory and process id)."""
        key = (os.getpid(), str(Path(path).resolve()))
        with cls._registry_guard:
            lock = cls._registry.get(key)
            if lock is None:
                lock = cls._registry[key] = cls(Path(key[1]))
            return lock

    def __enter__(self) -> StoreLock:
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                if self._fd is None:
                    self._fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


def _locked(method):
    """Wrap a collection method so that it runs (and its results are read) under the store lock."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator_wrapper(self, *args, **kwargs):
            with self.database.client.store_lock:
                return iter(list(method(self, *args, **kwargs)))

        return generator_wrapper

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.database.client.store_lock:
            result = method(self, *args, **kwargs)
            if inspect.isgenerator(result):  # lazily evaluated results (e.g. _get_dataset)
                result = iter(list(result))
            return result

    return wrapper


class _LockedCollection(_MockCollection):
    """A mongomock collection whose every data operation holds the store lock."""

    def with_options(self, *args: Any, **kwargs: Any) -> _LockedCollection:
        collection = super().with_options(*args, **kwargs)
        collection.__class__ = _LockedCollection
        return collection


for _name, _member in list(vars(_MockCollection).items()):
    if (
        inspect.isfunction(_member)
        and not _name.startswith("__")
        and _name not in {"with_options", "find", "initialize_ordered_bulk_op", "initialize_unordered_bulk_op"}
    ):
        setattr(_LockedCollection, _name, _locked(_member))


def _refuse_large_updates(method):
    """MongoDB's contract for an update: an update document over the limit is ``DocumentTooLarge`` (pymongo
    refuses to send it); a result over the limit is ``WriteError`` 17419 (the server refuses to store it)."""

    @functools.wraps(method)
    def wrapper(self, filter, update, *args, **kwargs):
        size = len(bson.encode({"u": update} if isinstance(update, list) else update))
        if size > MAX_BSON_SIZE:
            raise _too_large(size)
        try:
            return method(self, filter, update, *args, **kwargs)
        except DocumentTooLarge as exc:
            raise WriteError(f"Resulting document after update is larger than {MAX_BSON_SIZE}", 17419,
                             {"code": 17419, "errmsg": str(exc)}) from None

    return wrapper


for _name in ("update_one", "update_many", "find_one_and_update"):
    setattr(_LockedCollection, _name, _refuse_large_updates(getattr(_LockedCollection, _name)))


class _LockedDatabase(_MockDatabase):
    """A mongomock database that hands out locked collections."""

    def get_collection(self, *args: Any, **kwargs: Any) -> _LockedCollection:
        with self.client.store_lock:
            collection = super().get_collection(*args, **kwargs)
        if type(collection) is _MockCollection:
            collection.__class__ = _LockedCollection
        return collection

    def list_collection_names(self, *args: Any, **kwargs: Any) -> list[str]:
        with self.client.store_lock:
            return super().list_collection_names(*args, **kwargs)

    def drop_collection(self, *args: Any, **kwargs: Any) -> None:
        with self.client.store_lock:
            super().drop_collection(*args, **kwargs)

    def command(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        name = command if isinstance(command, str) else next(iter(command), None)
        if name in ("hello", "isMaster", "ismaster"):
            return {"isWritablePrimary": True, "ismaster": True, "maxBsonObjectSize": MAX_BSON_SIZE,
                    "maxMessageSizeBytes": MAX_MESSAGE_SIZE, "maxWriteBatchSize": MAX_WRITE_BATCH_SIZE, "ok": 1.0}
        with self.client.store_lock:
            return super().command(command, *args, **kwargs)


class _SizeCheckedDocuments(_lm_sqlite.TableDict):
    """litemongo's document table, refusing a document over MongoDB's 16 MiB before it is written."""

    def _encode_doc(self, doc: dict) -> str | bytes:
        encoded = super()._encode_doc(doc)
        if len(encoded) > MAX_BSON_SIZE:
            raise _too_large(len(encoded))
        return encoded


class _SharedConnectionCollectionStore(_lm_sqlite.CollectionStore):
    """litemongo's SQLite collection with a connection that several threads may use (under the lock)."""

    def open(self) -> None:
        super().open()
        self._documents.__class__ = _SizeCheckedDocuments
        # litemongo opens the file with sqlite3's default check_same_thread=True; reopen it with
        # check_same_thread=False and hand the new connection to the tables that use it.
        old = self._connection
        connection = sqlite3.connect(self._path, check_same_thread=False, timeout=300)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        cursor = connection.cursor()
        for table in (self._documents, self.indexes):
            table._connection = connection
            table._cur = cursor
        self._connection, self._cur = connection, cursor
        old.close()
        with connection:  # the change log that keeps other processes' query indexes incremental
            connection.execute(f"CREATE TABLE IF NOT EXISTS {CHANGES}(seq INTEGER PRIMARY KEY AUTOINCREMENT, id)")
            for event, row in (("INSERT", "new"), ("UPDATE", "new"), ("DELETE", "old")):
                connection.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {CHANGES}_{event.lower()} AFTER {event} ON {self.DOCUMENTS} "
                    f"BEGIN INSERT INTO {CHANGES}(id) VALUES ({row}._id); END"
                )
        self._seen_change = None

    def reopen_in_child(self) -> None:
        """After a fork: a new connection of this process; the inherited one is left alone (see _INHERITED)."""
        if self._connection is not None:
            _INHERITED.append(self._connection)
            self._connection = None
        self._rwlock = _RWLock()
        self.open()

    def _last_change(self) -> int:
        return self._connection.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {CHANGES}").fetchone()[0]

    def _get_query_index(self) -> Any:
        """The query index, brought up to date with other processes' writes by replaying the change log.

        litemongo rebuilds the whole index (decoding every document) whenever another connection has
        committed; with several FireWorks workers that is every query.  Here only the documents that
        changed since this process last looked are re-read.  The log is pruned by whoever sees it grow
        past ``CHANGES_KEPT``; a reader that fell behind the pruned part rebuilds in full.
        """
        data_version = self._connection.execute("PRAGMA data_version").fetchone()[0]
        if self._query_index is not None and self._seen_change is not None and data_version != self._data_version:
            first = self._connection.execute(f"SELECT MIN(seq) FROM {CHANGES}").fetchone()[0]
            if first is not None and first > self._seen_change + 1:
                self._query_index = None  # pruned past what this process has seen
            else:
                rows = self._connection.execute(
                    f"SELECT seq, id FROM {CHANGES} WHERE seq > ? ORDER BY seq", (self._seen_change,)
                ).fetchall()
                changed = list(dict.fromkeys(key for _, key in rows))
                if rows:
                    self._seen_change = rows[-1][0]
                found = dict(self._documents_by_key(changed))
                for key in changed:
                    if key in found:
                        self._query_index.add(key, found[key])
                    else:
                        self._query_index.remove(key)
                if self._seen_change - (first or 0) > 2 * CHANGES_KEPT:
                    with self._connection:
                        self._connection.execute(f"DELETE FROM {CHANGES} WHERE seq <= ?",
                                                 (self._seen_change - CHANGES_KEPT,))
        self._data_version = data_version
        if self._query_index is None:
            self._seen_change = self._last_change()
            self._query_index = _mm_indexing.CollectionIndexes()
            self._query_index.set_paths(_mm_indexing.index_paths(self.indexes.values()), ())
            for key, doc in self._iter_items():
                self._query_index.add(key, doc)
        else:
            self._query_index.set_paths(_mm_indexing.index_paths(self.indexes.values()), self._iter_items())
        return self._query_index

    def _documents_by_key(self, keys: list[Any]) -> list[tuple[Any, dict]]:
        out = []
        table = self._documents
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, doc in self._connection.execute(
                f"SELECT {table.ID}, {table.DOC} FROM {self.DOCUMENTS} WHERE {table.ID} IN ({marks})", chunk
            ):
                out.append((key, table._decode_doc(doc)))
        return out


class _SharedConnectionDatabaseStore(_lm_sqlite.DatabaseStore):
    def __getitem__(self, col_name: str) -> _SharedConnectionCollectionStore:
        if col_name not in self._collections:
            self._collections[col_name] = _SharedConnectionCollectionStore(
                self._dirpath / col_name, codec_options=self._codec_options
            )
        return self._collections[col_name]


class _SharedConnectionServerStore(_lm_sqlite.ServerStore):
    def __getitem__(self, db_name: str) -> _SharedConnectionDatabaseStore:
        if db_name not in self._databases:
            self._databases[db_name] = _SharedConnectionDatabaseStore(self._dirpath / db_name)
        return self._databases[db_name]


class EmbeddedMongoClient(_lm_client.MongoClient):
    """A pymongo-compatible client over the embedded store in ``path``.

    Parameters
    ----------
    path
        Directory of the store (created if missing).  Every client on the same directory, in any
        process or thread, sees the same data and serialises on the same lock.
    database
        Optional default database name.
    """

    def __init__(self, path: str | Path, database: str = "", **kwargs: Any) -> None:
        self.path = Path(path).expanduser().absolute()
        self.path.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._store_lock = StoreLock.for_directory(self.path)
        with self.store_lock:
            super().__init__(_SharedConnectionServerStore(self.path), database=database, **kwargs)

    @property
    def store_lock(self) -> StoreLock:
        """This process's lock of the store (in a process forked from the opener, the client re-opens first)."""
        if self._pid != os.getpid():
            self._reopen_after_fork()
        return self._store_lock

    def _reopen_after_fork(self) -> None:
        self._pid = os.getpid()
        self._store_lock = StoreLock.for_directory(self.path)
        with self._store_lock:
            for database in getattr(self._store, "_databases", {}).values():
                for collection in database._collections.values():
                    collection.reopen_in_child()

    @property
    def max_bson_size(self) -> int:
        """Largest document the store accepts (bytes of BSON), as MongoDB's ``hello`` reports it."""
        return MAX_BSON_SIZE

    @property
    def max_message_size(self) -> int:
        """Largest message (bytes), as MongoDB's ``hello`` reports it."""
        return MAX_MESSAGE_SIZE

    @property
    def max_write_batch_size(self) -> int:
        """Most write operations in one batch, as MongoDB's ``hello`` reports it."""
        return MAX_WRITE_BATCH_SIZE

    def get_database(self, *args: Any, **kwargs: Any) -> _LockedDatabase:
        with self.store_lock:
            database = super().get_database(*args, **kwargs)
        if type(database) is _MockDatabase:
            database.__class__ = _LockedDatabase
        return database

    def list_database_names(self) -> list[str]:
        with self.store_lock:
            return super().list_database_names()

    def close(self) -> None:
        with self.store_lock:
            super().close()


os.register_at_fork(after_in_child=StoreLock._after_fork)


@functools.cache
def enable_embedded_gridfs() -> None:
    """Let pymongo's ``gridfs`` accept embedded databases (embedded path only).

    ``gridfs`` checks ``isinstance(db, pymongo.database.Database)``.  mongomock's integration widens
    those checks to accept its classes as well as pymongo's, so real MongoDB objects keep working in
    the same process.  It is only called when an embedded store is opened, never on the MongoDB path.
    """
    from litemongo._vendor.mongomock.gridfs import enable_gridfs_integration

    enable_gridfs_integration()
