"""pytest plugin: run a peer package's own tests (FireWorks, maggma, jobflow) against the embedded store.

Loaded with ``-p peer_plugin`` by :mod:`tests.storage.test_peer_suites`.  Every ``pymongo.MongoClient(...)``
the peer's tests make (whatever host, port, timeouts or credentials they pass) becomes an
:class:`~mlipflow.embedded.EmbeddedMongoClient` on the directory ``MLIPFLOW_PEER_STORE``; so do the clients
that FireWorks and maggma build internally.  gridfs is told to accept embedded databases.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import pymongo

from mlipflow.embedded import EmbeddedMongoClient, enable_embedded_gridfs

#: modules that hold their own reference to ``pymongo.MongoClient``
_HOLDERS = ("fireworks.fw_config", "fireworks.core.launchpad", "fireworks.utilities.filepad",
            "maggma.stores.mongolike", "maggma.stores.gridfs", "maggma.stores.advanced_stores",
            "maggma.stores.shared_stores", "jobflow.core.store")
_REAL = pymongo.MongoClient


class PeerClient(EmbeddedMongoClient):
    """``MongoClient(host, port, **kwargs)`` on the embedded store (host, port and options are ignored)."""

    def __init__(self, host: Any = None, port: Any = None, *args: Any, **kwargs: Any) -> None:
        database = ""
        if isinstance(host, str) and host.startswith("mongodb") and "/" in host.split("://", 1)[-1]:
            database = host.split("://", 1)[-1].split("/", 1)[1].split("?", 1)[0]
        super().__init__(os.environ["MLIPFLOW_PEER_STORE"], database=database)


def _patch() -> None:
    enable_embedded_gridfs()
    pymongo.MongoClient = PeerClient  # what tests import later (``from pymongo import MongoClient``)
    for name in _HOLDERS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "MongoClient", None) is _REAL:
            module.MongoClient = PeerClient
    for module in list(sys.modules.values()):  # anything else imported so far
        if getattr(module, "MongoClient", None) is _REAL and not getattr(module, "__name__", "").startswith("pymongo"):
            module.MongoClient = PeerClient


_patch()


def _old_pytest_nodeid() -> None:
    """maggma's conftest renames test ids through pytest's old private ``Item._nodeid``: keep pytest's ids."""
    from _pytest.nodes import Node

    if not hasattr(Node, "_nodeid"):
        Node._nodeid = property(lambda self: self.nodeid, lambda self, value: None)


_old_pytest_nodeid()
