"""Finished-step records: a job whose inputs match a step that already finished returns the stored result.

Labels have their ledger and trainings their model registry, both keyed by content.  Steps whose result is
a small document over data already in the stores (committee MD: walker summaries over stored trajectories;
selection: picks that point into them) are recorded here under a hash of all their inputs.  Resuming a
campaign then replays them exactly, instead of running MD again (slow) or selecting again (a second
selection would no longer see its own picks as new: they are labeled by then).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from monty.json import MontyEncoder

from mlipflow.storage import Stores

#: collection of finished steps: ``{_id: key, kind, result, time}``
FINISHED_STEPS = "finished_steps"


def step_key(kind: str, inputs: dict[str, Any]) -> str | None:
    """Hash of a step's kind and inputs; ``None`` when an input has no stable serialised form."""
    try:
        text = json.dumps({"kind": kind, "inputs": inputs}, cls=MontyEncoder, sort_keys=True)
    except (TypeError, ValueError):
        return None
    if " object at 0x" in text:  # a repr with a memory address is not stable between runs
        return None
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def finished_step(stores: Stores, key: str | None) -> dict[str, Any] | None:
    """The stored result of the finished step ``key``, or ``None``."""
    if key is None:
        return None
    doc = stores.collection(FINISHED_STEPS).find_one({"_id": key})
    return None if doc is None else doc["result"]


def record_step(stores: Stores, key: str | None, kind: str, result: dict[str, Any]) -> None:
    """Record the (small, JSON-serialisable) result of a finished step."""
    if key is None:
        return
    stores.collection(FINISHED_STEPS).replace_one(
        {"_id": key}, {"_id": key, "kind": kind, "result": result, "time": datetime.now(UTC).isoformat()},
        upsert=True)
