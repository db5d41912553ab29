"""The dataset's home: labeled frames in one collection, immutable versions with fixed splits.

* Frames live in the ``frames`` collection with their content hash as ``_id`` (a unique index by
  construction): the same structure labeled with the same settings is never stored twice.
* A :class:`DatasetVersion` is an immutable manifest (frame ids with a train/valid/test assignment,
  parent version, note).  Its frame list is stored in the large-data store (GridFS), the document
  holds the summary, so a version of any size stays a small document.
* Split assignment is deterministic per frame (hash of seed and frame id) and inherited from the
  parent version, so a frame never moves from test to train as the dataset grows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from pymongo.errors import DuplicateKeyError

from mlipflow.data.frames import LabeledFrame, LabelerInfo, utcnow
from mlipflow.errors import DataError
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)

Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = ("train", "valid", "test")


class AddResult(BaseModel):
    """What :meth:`Dataset.add_frames` did: ids newly stored and ids that were already there."""

    inserted: list[str] = Field(default_factory=list)
    existing: list[str] = Field(default_factory=list)


class DatasetVersion(BaseModel):
    """Summary of an immutable dataset version (its frame list sits in the large-data store).

    Parameters
    ----------
    id
        Version id (``<name>-<12 hex digits of the manifest hash>``).
    counts
        Frames per split.
    config_types, labelers
        Frames per MACE config type and per labeler (``name version (kind)``).
    isolated_atoms
        Element -> id of its isolated-atom frame, labeled by the same labeler: the E0s of training.  These
        frames are not in the manifest (no split); a child version inherits them.
    """

    id: str
    name: str
    parent: str | None = None
    note: str = ""
    seed: int = 0
    fractions: dict[str, float]
    counts: dict[str, int]
    config_types: dict[str, int]
    labelers: dict[str, int]
    manifest_file: Any = None
    isolated_atoms: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def size(self) -> int:
        return sum(self.counts.values())


def assign_split(frame_id: str, seed: int, fractions: dict[str, float]) -> Split:
    """Deterministic split of one frame from a hash of ``seed`` and its id."""
    u = int(hashlib.sha256(f"{seed}:{frame_id}".encode()).hexdigest()[:12], 16) / 16**12
    edge = 0.0
    for split in SPLITS:
        edge += fractions.get(split, 0.0)
        if u < edge:
            return split
    return "train"


class Dataset:
    """Access to the labeled frames and dataset versions of one store.

    Parameters
    ----------
    stores
        From :func:`mlipflow.storage.get_stores`.
    """

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.frames = stores.frames
        self.versions = stores.datasets
        self.frames.create_index("status")
        self.frames.create_index("labeler_hash")
        self.frames.create_index("import_id")

    # -- frames -------------------------------------------------------------------------------
    def add_frames(self, frames: Iterable[LabeledFrame], *, import_id: str | None = None) -> AddResult:
        """Store frames that are not there yet; all or nothing.

        A frame whose content hash is already stored is left as it is and reported in ``existing``.
        If anything fails while storing, the frames stored by this call are removed again.
        """
        result = AddResult()
        seen: set[str] = set()
        try:
            for frame in frames:
                doc = frame.to_document()
                if import_id:
                    doc["import_id"] = import_id
                if doc["_id"] in seen:
                    result.existing.append(doc["_id"])
                    continue
                seen.add(doc["_id"])
                try:
                    self.frames.insert_one(doc)
                    result.inserted.append(doc["_id"])
                except DuplicateKeyError:
                    result.existing.append(doc["_id"])
        except BaseException:
            if result.inserted:
                self.frames.delete_many({"_id": {"$in": result.inserted}})
            raise
        return result

    def get(self, frame_id: str) -> LabeledFrame:
        """Return one frame by id, or raise :class:`DataError`."""
        doc = self.frames.find_one({"_id": frame_id})
        if doc is None:
            raise DataError(f"no frame with id {frame_id!r} in {self.stores.describe()}")
        return LabeledFrame.from_document(doc)

    def iter_frames(self, query: dict[str, Any] | None = None) -> Iterator[LabeledFrame]:
        """Frames matching a MongoDB query, in insertion order."""
        for doc in self.frames.find(query or {}):
            yield LabeledFrame.from_document(doc)

    def count(self, query: dict[str, Any] | None = None) -> int:
        return self.frames.count_documents(query or {})

    # -- versions -------------------------------------------------------------------------------
    def create_version(
        self,
        name: str,
        *,
        frame_ids: Iterable[str] | None = None,
        parent: str | None = None,
        fractions: dict[str, float] | None = None,
        seed: int = 0,
        note: str = "",
        isolated_atoms: dict[str, str] | None = None,
    ) -> DatasetVersion:
        """Freeze a set of labeled frames into a new immutable version.

        Parameters
        ----------
        name
            Human name of the dataset (versions of one campaign share it).
        frame_ids
            Frames to add on top of the parent's; default: every labeled frame in the store.
        parent
            Version this one grows from: its frames and their splits are kept as they are.
        fractions
            Split fractions for frames new in this version (default 0.8/0.1/0.1).
        seed
            Seed of the split assignment.
        note
            Free text kept with the version.
        isolated_atoms
            Element -> frame id of isolated-atom labels (E0s), over those inherited from the parent.

        Raises
        ------
        DataError
            If a frame id is unknown or not labeled (failed and filtered frames never enter a version),
            or if labels from different labelers would be mixed.
        """
        fractions = fractions or {"train": 0.8, "valid": 0.1, "test": 0.1}
        if abs(sum(fractions.values()) - 1.0) > 1e-9 or set(fractions) - set(SPLITS):
            raise DataError(f"split fractions must be train/valid/test summing to 1, got {fractions}")
        assignment: dict[str, str] = {}
        isolated: dict[str, str] = {}
        if parent is not None:
            assignment.update(self.manifest(parent))
            isolated.update(self.get_version(parent).isolated_atoms)
        isolated.update(isolated_atoms or {})
        query: dict[str, Any] = {"status": "labeled"}
        if frame_ids is not None:
            wanted = list(dict.fromkeys(frame_ids))
            query["_id"] = {"$in": wanted}
        projection = {"_id": 1, "provenance.config_type": 1, "provenance.family": 1, "labeler": 1}
        docs = list(self.frames.find(query, projection))
        if frame_ids is not None and len(docs) != len(wanted):
            found = {d["_id"] for d in docs}
            missing = [i for i in wanted if i not in found][:5]
            raise DataError(f"dataset version {name!r}: frames not stored or not labeled: {missing}")
        for doc in docs:
            assignment.setdefault(doc["_id"], assign_split(doc["_id"], seed, fractions))
        info = {
            d["_id"]: d
            for d in self.frames.find({"_id": {"$in": [*assignment, *isolated.values()]}}, projection)
        }
        if any(i not in info for i in isolated.values()):
            raise DataError(f"dataset version {name!r}: isolated-atom frames not stored: {isolated}")
        labelers = Counter(LabelerInfo(**d["labeler"]).describe() for d in info.values())
        if len({(d["labeler"]["name"], d["labeler"].get("version")) for d in info.values()}) > 1:
            raise DataError(
                f"dataset version {name!r} would mix labels of different labelers {dict(labelers)}; "
                "energies of different methods are not comparable: make one version per labeler"
            )
        config_types = Counter(
            (d.get("provenance") or {}).get("config_type") or (d.get("provenance") or {}).get("family") or "Default"
            for i, d in info.items() if i in assignment
        )
        manifest = dict(sorted(assignment.items()))
        identity = [name, parent, manifest] + ([dict(sorted(isolated.items()))] if isolated else [])
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]
        version_id = f"{name}-{digest}"
        existing = self.versions.find_one({"_id": version_id})
        if existing is not None:
            return DatasetVersion(**{k: v for k, v in existing.items() if k != "_id"}, id=version_id)
        file_id = self.stores.blobs.put(json.dumps(manifest).encode(), filename=f"dataset-{version_id}.json")
        version = DatasetVersion(
            id=version_id,
            name=name,
            parent=parent,
            note=note,
            seed=seed,
            fractions=fractions,
            counts={s: sum(1 for v in manifest.values() if v == s) for s in SPLITS},
            config_types=dict(config_types),
            labelers=dict(labelers),
            manifest_file=file_id,
            isolated_atoms=isolated,
        )
        self.versions.insert_one({"_id": version_id, **version.model_dump(exclude={"id"})})
        logger.info("dataset version %s: %s", version_id, version.counts)
        return version

    def get_version(self, version_id: str) -> DatasetVersion:
        """Return a version by id, or the newest version of a dataset name."""
        doc = self.versions.find_one({"_id": version_id})
        if doc is None:
            newest = list(self.versions.find({"name": version_id}).sort("created_at", -1).limit(1))
            doc = newest[0] if newest else None
        if doc is None:
            raise DataError(f"no dataset version {version_id!r} (see `mlipflow dataset list`)")
        return DatasetVersion(**{k: v for k, v in doc.items() if k != "_id"}, id=doc["_id"])

    def list_versions(self) -> list[DatasetVersion]:
        return [
            DatasetVersion(**{k: v for k, v in d.items() if k != "_id"}, id=d["_id"])
            for d in self.versions.find({}).sort("created_at", 1)
        ]

    def manifest(self, version_id: str) -> dict[str, str]:
        """Frame id -> split of a version."""
        version = self.get_version(version_id)
        return json.loads(self.stores.blobs.get(version.manifest_file).read())

    def version_frames(self, version_id: str, split: Split | None = None) -> Iterator[tuple[LabeledFrame, str]]:
        """(frame, split) pairs of a version, optionally one split only, in a stable order."""
        manifest = self.manifest(version_id)
        ids = [i for i, s in manifest.items() if split is None or s == split]
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            docs = {d["_id"]: d for d in self.frames.find({"_id": {"$in": chunk}})}
            for frame_id in chunk:
                yield LabeledFrame.from_document(docs[frame_id]), manifest[frame_id]
