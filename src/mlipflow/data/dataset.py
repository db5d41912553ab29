"""The dataset's home: labeled frames in one collection, immutable versions with fixed splits.

* Frames live in the ``frames`` collection with their content hash as ``_id`` (a unique index by
  construction): the same structure labeled with the same settings is never stored twice.
* A :class:`DatasetVersion` is an immutable manifest (frame ids with a train/valid/test assignment,
  parent version, note).  Its frame list is stored in the large-data store (GridFS), the document
  holds the summary, so a version of any size stays a small document.
* Splits are assigned per *group* of correlated frames (one MD trajectory, one rattle or strain series of one
  parent structure, see :func:`frame_group`), stratified by structure family, with a minimum number of
  validation and test frames per family, deterministically (hash of seed and group).  A group never spans
  two splits, and assignments are inherited from the parent version, so a frame never moves from test to
  train as the dataset grows (a new frame of a known group joins that group's split).
* A version holds the labels of one labeler with one set of settings: labels whose settings differ (another
  cutoff, functional or U) are refused, naming both settings.
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
    families: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="structure family -> split -> frames and groups (`<split>_groups`)")
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def size(self) -> int:
        return sum(self.counts.values())


def _unit(seed: int, key: str) -> float:
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:12], 16) / 16**12


def assign_split(frame_id: str, seed: int, fractions: dict[str, float]) -> Split:
    """Split of one item drawn from a hash of ``seed`` and its id (fractions followed on average)."""
    u = _unit(seed, frame_id)
    edge = 0.0
    for split in SPLITS:
        edge += fractions.get(split, 0.0)
        if u < edge:
            return split
    return "train"


def frame_group(provenance: dict[str, Any] | None, frame_id: str) -> str:
    """The group of correlated frames a frame belongs to (frames of one group share a split).

    In order: the provenance's explicit ``group``; the trajectory of an MD frame (``parent`` =
    ``trajectory:<id>``); the series of one generator on one parent structure (rattles, strains) of one
    structure-section entry; else the frame itself.
    """
    prov = provenance or {}
    if prov.get("group"):
        return str(prov["group"])
    parent = str(prov.get("parent") or "")
    if parent.startswith("trajectory:"):
        return parent
    if parent and prov.get("generator"):
        return f"{prov['generator']}|{parent}|{prov.get('entry') or ''}"
    return f"frame:{frame_id}"


def _family(provenance: dict[str, Any] | None) -> str:
    prov = provenance or {}
    return str(prov.get("family") or prov.get("config_type") or "Default")


def assign_group_splits(
    groups: dict[str, list[str]],
    families: dict[str, str],
    existing: dict[str, str],
    counts: dict[str, dict[str, int]],
    *,
    seed: int,
    fractions: dict[str, float],
    minimum: dict[str, int] | None = None,
) -> dict[str, str]:
    """Splits of new groups, stratified by family (deterministic, greedy on the deficit of each split).

    Parameters
    ----------
    groups
        New group -> its frame ids.
    families
        Group -> structure family.
    existing
        Group -> split of groups already in the parent version (they keep it).
    counts
        Family -> split -> frames already assigned (updated in place).
    seed
        Seed of the group order.
    fractions
        Target fraction of frames per split.
    minimum
        Split -> frames that every family with more than one group should reach first (``valid``, ``test``).

    Returns
    -------
    dict
        Group -> split for every group of ``groups``.

    Notes
    -----
    Groups of a family are visited in the order of a hash of seed and group id.  A family's first group goes to
    train; then validation and test are filled to their minimum; after that each group goes to the split
    furthest below its target fraction.
    """
    minimum = {k: v for k, v in (minimum or {}).items() if fractions.get(k, 0.0) > 0}
    out: dict[str, str] = {}
    by_family: dict[str, list[str]] = {}
    for group in groups:
        if group in existing:
            out[group] = existing[group]
            continue
        by_family.setdefault(families[group], []).append(group)
    for family in sorted(by_family):
        have = counts.setdefault(family, {s: 0 for s in SPLITS})
        for group in sorted(by_family[family], key=lambda g: (_unit(seed, g), g)):
            size = len(groups[group])
            if have["train"] == 0:
                split: Split = "train"
            else:
                short = [s for s in ("valid", "test") if s in minimum and have[s] < minimum[s]]
                if short:
                    split = short[0]  # type: ignore[assignment]
                else:
                    total = sum(have.values()) + size
                    open_splits = [s for s in SPLITS if fractions.get(s, 0.0) > 0] or ["train"]
                    split = max(open_splits, key=lambda s: (fractions.get(s, 0.0) * total - have[s], s == "train"))
            out[group] = split
            have[split] += size
    return out


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
        minimum: dict[str, int] | None = None,
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
            Split fractions for frames new in this version (default 0.8/0.1/0.1), reached per structure
            family by whole groups of correlated frames (:func:`frame_group`).
        seed
            Seed of the split assignment.
        minimum
            Frames per family that ``valid`` and ``test`` get first (when the family has groups to spare),
            e.g. ``{"valid": 4, "test": 4}``.
        note
            Free text kept with the version.
        isolated_atoms
            Element -> frame id of isolated-atom labels (E0s), over those inherited from the parent.

        Raises
        ------
        DataError
            If a frame id is unknown or not labeled (failed and filtered frames never enter a version),
            or if labels from different labelers or different labeler settings would be mixed.
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
        projection = {"_id": 1, "provenance": 1, "labeler": 1}
        docs = list(self.frames.find(query, projection))
        if frame_ids is not None and len(docs) != len(wanted):
            found = {d["_id"] for d in docs}
            missing = [i for i in wanted if i not in found][:5]
            raise DataError(f"dataset version {name!r}: frames not stored or not labeled: {missing}")
        info = {
            d["_id"]: d
            for d in self.frames.find({"_id": {"$in": [*assignment, *isolated.values()]}}, projection)
        }
        info.update({d["_id"]: d for d in docs})
        if any(i not in info for i in isolated.values()):
            raise DataError(f"dataset version {name!r}: isolated-atom frames not stored: {isolated}")
        self._check_one_labeler(name, info.values())
        assignment.update(self._split_new(assignment, [d["_id"] for d in docs], info, seed, fractions, minimum))
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
            labelers=dict(Counter(LabelerInfo(**d["labeler"]).describe() for d in info.values())),
            families=self._family_counts(manifest, info),
            manifest_file=file_id,
            isolated_atoms=isolated,
        )
        self.versions.insert_one({"_id": version_id, **version.model_dump(exclude={"id"})})
        logger.info("dataset version %s: %s", version_id, version.counts)
        return version

    @staticmethod
    def _check_one_labeler(name: str, docs: Iterable[dict[str, Any]]) -> None:
        """Refuse frames of different labelers, or of one labeler with different settings."""
        by_hash: dict[str, LabelerInfo] = {}
        for d in docs:
            labeler = LabelerInfo(**d["labeler"])
            by_hash.setdefault(labeler.settings_hash, labeler)
        if len(by_hash) <= 1:
            return
        first, second = list(by_hash.values())[:2]
        if (first.name, first.version) != (second.name, second.version):
            described = sorted({lab.describe() for lab in by_hash.values()})
            raise DataError(
                f"dataset version {name!r} would mix labels of different labelers {described}; energies of "
                "different methods are not comparable: make one version per labeler"
            )
        keys = sorted(k for k in {*first.settings, *second.settings}
                      if first.settings.get(k) != second.settings.get(k))
        raise DataError(
            f"dataset version {name!r} would mix labels of {first.describe()} made with different settings "
            f"(they differ in {keys}): {json.dumps(first.settings, sort_keys=True, default=str)} and "
            f"{json.dumps(second.settings, sort_keys=True, default=str)}; relabel with one set of settings or "
            "make one version per setting"
        )

    @staticmethod
    def _split_new(assignment: dict[str, str], new_ids: list[str], info: dict[str, dict[str, Any]], seed: int,
                   fractions: dict[str, float], minimum: dict[str, int] | None) -> dict[str, str]:
        """Splits of the frames new to a version: by group, stratified by family, inheriting known groups."""
        existing: dict[str, str] = {}
        counts: dict[str, dict[str, int]] = {}
        for fid, split in assignment.items():
            prov = (info.get(fid) or {}).get("provenance")
            existing.setdefault(frame_group(prov, fid), split)
            fam = counts.setdefault(_family(prov), {s: 0 for s in SPLITS})
            fam[split] = fam.get(split, 0) + 1
        groups: dict[str, list[str]] = {}
        families: dict[str, str] = {}
        for fid in new_ids:
            if fid in assignment:
                continue
            prov = info[fid].get("provenance")
            group = frame_group(prov, fid)
            groups.setdefault(group, []).append(fid)
            families.setdefault(group, _family(prov))
        splits = assign_group_splits(groups, families, existing, counts, seed=seed, fractions=fractions,
                                     minimum=minimum)
        return {fid: splits[g] for g, ids in groups.items() for fid in ids}

    @staticmethod
    def _family_counts(manifest: dict[str, str], info: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, Any]] = {}
        for fid, split in manifest.items():
            prov = (info.get(fid) or {}).get("provenance")
            entry = out.setdefault(_family(prov), {**{s: 0 for s in SPLITS}, **{f"{s}_groups": set() for s in SPLITS}})
            entry[split] += 1
            entry[f"{split}_groups"].add(frame_group(prov, fid))
        return {f: {k: (len(v) if isinstance(v, set) else v) for k, v in e.items()} for f, e in sorted(out.items())}

    def groups(self, version_id: str) -> dict[str, set[str]]:
        """Group -> the splits its frames are in (one split per group, by construction)."""
        manifest = self.manifest(version_id)
        out: dict[str, set[str]] = {}
        for d in self.frames.find({"_id": {"$in": list(manifest)}}, {"_id": 1, "provenance": 1}):
            out.setdefault(frame_group(d.get("provenance"), d["_id"]), set()).add(manifest[d["_id"]])
        return out

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
