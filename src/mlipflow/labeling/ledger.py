"""The label ledger: the frames collection as the one record of what is labeled, running, failed or filtered.

Every frame to label is stored once, under its content hash (canonical structure + labeler settings), with
status ``pending``.  A worker *claims* it with one atomic ``find_one_and_update`` (``pending`` ->
``running``, with a claim token, host, process id and expiry), so two workers never label the same frame.
The result is written as soon as it is known:

* ``labeled``: energy (eV), forces (eV/Å), stress (GPa), corrections;
* ``failed``: the reason, ``attempts`` incremented, every attempt kept in ``failure_log``; claimable again
  while ``attempts < max_attempts``;
* ``filtered``: the label is kept with the sanity filter's reason, never used for training.

A ``running`` frame is not started again while its claim is live.  While a calculation runs, a heartbeat
thread (:meth:`LabelLedger.heartbeat`) renews the claim every ``stale_after / 4`` seconds, so a DFT run
longer than ``stale_after`` is never started a second time.  A claim is stale, and may be taken over, only
when its holder is gone: it was not renewed for ``stale_after`` seconds (the worker died or hangs without
its heartbeat), or it belongs to a process of this host that no longer exists (a killed worker).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import units
from pymatgen.core import Structure
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from mlipflow._process import pid_alive
from mlipflow.data import LabeledFrame, LabelerInfo, Provenance
from mlipflow.data.frames import utcnow
from mlipflow.labeling.base import LabelResult

logger = logging.getLogger(__name__)

HOST = socket.gethostname()


def provenance_of(structure: Structure, **overrides: Any) -> Provenance:
    """Provenance of a generated structure (``structure.properties["provenance"]``), with overrides.

    Generators store ``{"family", "generator", "parameters", "parent"}`` there; other keys are kept.
    """
    raw = dict((structure.properties or {}).get("provenance") or {})
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if "origin" not in raw:
        raw["origin"] = "generator" if raw.get("generator") else "unknown"
    return Provenance(**raw)


@dataclass
class Claim:
    """A worker's hold on one frame (a token proves ownership when the result is written)."""

    frame_id: str
    token: str
    attempts: int
    structure: Structure
    family: str | None


class LabelLedger:
    """Register, claim and settle frames of one labeler in the frames collection.

    Parameters
    ----------
    frames
        The frames collection (``Stores.frames``).
    labeler
        Who labels (its settings hash is part of every frame id).
    stale_after
        Seconds after which a ``running`` claim counts as abandoned (s).
    """

    def __init__(self, frames: Any, labeler: LabelerInfo, stale_after: float = 6 * 3600.0) -> None:
        self.frames = frames
        self.labeler = labeler
        self.labeler_hash = labeler.settings_hash
        self.stale_after = float(stale_after)
        for key in ("status", "labeler_hash"):
            self.frames.create_index(key)

    # -- registration ---------------------------------------------------------------------------
    def register(self, structure: Structure, provenance: Provenance | None = None) -> tuple[str, str]:
        """Store a frame as ``pending`` unless it is already known; return (frame id, current status)."""
        clean = structure.copy()
        prov = provenance or provenance_of(structure)
        clean.properties = {}
        frame = LabeledFrame(structure=clean, labeler=self.labeler, provenance=prov, status="pending")
        doc = frame.to_document()
        existing = self.frames.find_one({"_id": doc["_id"]}, {"status": 1})
        if existing is not None:
            return doc["_id"], existing["status"]
        try:
            self.frames.insert_one(doc)
        except DuplicateKeyError:  # another worker registered it in between
            existing = self.frames.find_one({"_id": doc["_id"]}, {"status": 1})
            return doc["_id"], existing["status"]
        return doc["_id"], "pending"

    # -- claiming --------------------------------------------------------------------------------
    def _claim_doc(self, token: str) -> dict[str, Any]:
        now = time.time()
        return {
            "token": token,
            "host": HOST,
            "pid": os.getpid(),
            "started": now,
            "expires": now + self.stale_after,
        }

    def claim(self, frame_id: str, max_attempts: int) -> Claim | None:
        """Atomically take a frame that needs a label; ``None`` if labeled, filtered, live or exhausted.

        Parameters
        ----------
        frame_id
            The frame's content hash.
        max_attempts
            A failed frame is claimed again only while it has had fewer attempts than this.
        """
        token = uuid.uuid4().hex
        update = {"$set": {"status": "running", "claim": self._claim_doc(token), "updated_at": utcnow()}}
        query = {
            "_id": frame_id,
            "$or": [
                {"status": "pending"},
                {"status": "failed", "attempts": {"$lt": max_attempts}},
                {"status": "running", "claim.expires": {"$lt": time.time()}},
            ],
        }
        doc = self.frames.find_one_and_update(query, update, return_document=ReturnDocument.AFTER)
        if doc is None:
            doc = self._take_over_dead_claim(frame_id, update)
        if doc is None:
            return None
        return Claim(
            frame_id=frame_id,
            token=token,
            attempts=int(doc.get("attempts") or 0),
            structure=Structure.from_dict(doc["structure"]),
            family=(doc.get("provenance") or {}).get("family"),
        )

    def _take_over_dead_claim(self, frame_id: str, update: dict[str, Any]) -> dict[str, Any] | None:
        """Reclaim a ``running`` frame whose worker process on this host is gone."""
        doc = self.frames.find_one({"_id": frame_id}, {"status": 1, "claim": 1})
        if doc is None or doc.get("status") != "running":
            return None
        claim = doc.get("claim") or {}
        if claim.get("host") != HOST or not claim.get("pid") or pid_alive(int(claim["pid"])):
            return None
        logger.warning(
            "frame %s: taking over the claim of dead process %s on %s", frame_id, claim["pid"], HOST
        )
        return self.frames.find_one_and_update(
            {"_id": frame_id, "status": "running", "claim.token": claim.get("token")},
            update,
            return_document=ReturnDocument.AFTER,
        )

    def renew(self, claim: Claim) -> bool:
        """Push a live claim's expiry ``stale_after`` seconds ahead; False if the claim was lost."""
        now = time.time()
        res = self.frames.update_one(
            {"_id": claim.frame_id, "status": "running", "claim.token": claim.token},
            {"$set": {"claim.expires": now + self.stale_after, "claim.heartbeat": now}},
        )
        return res.matched_count > 0

    @contextmanager
    def heartbeat(self, claim: Claim, interval: float | None = None) -> Iterator[threading.Event]:
        """Renew ``claim`` from a daemon thread while the block runs (a long calculation).

        Parameters
        ----------
        claim
            The claim to keep alive.
        interval
            Seconds between renewals (default ``stale_after / 4``, at least 0.05 s).

        Yields
        ------
        threading.Event
            Set when a renewal found the claim gone (another worker took it over); the result of the
            calculation will then be discarded by :meth:`complete`.
        """
        period = max(0.05, self.stale_after / 4.0) if interval is None else float(interval)
        stop = threading.Event()
        lost = threading.Event()

        def beat() -> None:
            while not stop.wait(period):
                try:
                    alive = self.renew(claim)
                except Exception as exc:  # a store hiccup must not kill the calculation; retry next beat
                    logger.warning("frame %s: claim renewal failed: %s", claim.frame_id, exc)
                    continue
                if not alive:
                    logger.warning("frame %s: the claim was lost while the calculation ran", claim.frame_id)
                    lost.set()
                    return

        thread = threading.Thread(target=beat, name=f"claim-heartbeat-{claim.frame_id[:8]}", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            stop.set()
            thread.join(timeout=max(1.0, 2 * period))

    def release(self, claim: Claim) -> None:
        """Give a claimed frame back (``pending``) without counting an attempt (e.g. on interrupt)."""
        self.frames.update_one(
            {"_id": claim.frame_id, "claim.token": claim.token},
            {"$set": {"status": "pending", "claim": None, "updated_at": utcnow()}},
        )

    # -- settling --------------------------------------------------------------------------------
    def complete(self, claim: Claim, result: LabelResult, filtered_reason: str | None = None) -> bool:
        """Write a label (``labeled``, or ``filtered`` with its reason); False if the claim was lost."""
        stress_gpa = None
        if result.stress is not None:
            stress_gpa = (np.asarray(result.stress, dtype=float).reshape(3, 3) / units.GPa).tolist()
        fields = {
            "status": "filtered" if filtered_reason else "labeled",
            "failure": filtered_reason,
            "energy": float(result.energy) if result.energy is not None else None,
            "forces": np.asarray(result.forces, dtype=float).tolist(),
            "stress": stress_gpa,
            "magmoms": None if result.magmoms is None else [float(m) for m in result.magmoms],
            "corrections": list(result.corrections),
            "label_details": dict(result.details),
            "claim": None,
            "updated_at": utcnow(),
        }
        res = self.frames.update_one(
            {"_id": claim.frame_id, "claim.token": claim.token}, {"$set": fields, "$inc": {"attempts": 1}}
        )
        if res.matched_count == 0:
            logger.warning(
                "frame %s: claim lost before the label was written; label discarded", claim.frame_id
            )
            return False
        return True

    def fail(self, claim: Claim, reason: str, final: bool) -> None:
        """Record a failed attempt with its reason (``failed`` when ``final``, else stays claimed)."""
        entry = {"reason": reason, "host": HOST, "pid": os.getpid(), "time": time.time()}
        fields: dict[str, Any] = {"failure": reason, "updated_at": utcnow()}
        if final:
            fields.update(status="failed", claim=None)
        self.frames.update_one(
            {"_id": claim.frame_id, "claim.token": claim.token},
            {"$set": fields, "$inc": {"attempts": 1}, "$push": {"failure_log": entry}},
        )

    def status(self, frame_id: str) -> str | None:
        doc = self.frames.find_one({"_id": frame_id}, {"status": 1})
        return None if doc is None else doc["status"]


def rejected_labels(frames: Any, campaign: str | None = None, limit: int = 0) -> list[dict[str, Any]]:
    """Frames whose label was filtered (kept, not trained on) or failed, with their reasons, newest first.

    Parameters
    ----------
    frames
        The frames collection (``stores.frames``).
    campaign
        Only the frames of this campaign (``provenance.campaign``); ``None``: all.
    limit
        At most this many rows (0: all).

    Returns
    -------
    list of dict
        ``frame`` (id), ``status`` (``filtered``/``failed``), ``reason``, ``attempts``, ``iteration``,
        ``family``, ``config_type``, ``formula`` (reduced), ``n_atoms``, ``labeler`` and ``updated_at``.
    """
    query: dict[str, Any] = {"status": {"$in": ["filtered", "failed"]}}
    if campaign is not None:
        query["provenance.campaign"] = campaign
    fields = {"status": 1, "failure": 1, "attempts": 1, "provenance": 1, "updated_at": 1, "labeler": 1,
              "formula": 1, "natoms": 1}
    cursor = frames.find(query, fields).sort("updated_at", -1)
    if limit:
        cursor = cursor.limit(limit)
    rows = []
    for doc in cursor:
        prov = doc.get("provenance") or {}
        labeler = doc.get("labeler") or {}
        rows.append({
            "frame": doc["_id"], "status": doc.get("status"), "reason": doc.get("failure") or "",
            "attempts": int(doc.get("attempts") or 0), "iteration": prov.get("iteration"),
            "family": prov.get("family"), "config_type": prov.get("config_type"),
            "formula": doc.get("formula"), "n_atoms": doc.get("natoms"),
            "labeler": LabelerInfo(**labeler).describe() if labeler.get("name") else "",
            "updated_at": doc.get("updated_at"),
        })
    return rows
