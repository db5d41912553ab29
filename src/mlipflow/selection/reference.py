"""The reference of a selection: the campaign's current dataset version, described once and cached per version.

Deduplication (same structure) and diversity (far from what is labeled) compare the candidates with the
frames the campaign has labeled so far, i.e. its current dataset version, never with every frame of the store
(another campaign's frames, of other elements, have nothing to say about this one's).  The structure hashes and
descriptor matrix of a version are stored once in the large-data store (``selection-reference-<version>-<key>``);
a child version loads its parent's and describes only the frames it adds, so the reference costs the new frames
of an iteration, not the whole dataset.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass

import numpy as np

from mlipflow.data import Dataset, LabeledFrame
from mlipflow.selection.descriptors import Descriptor, frame_hash
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)


@dataclass
class Reference:
    """Structure hashes (frame order) and descriptors (n_frames, dim) of a dataset version's frames."""

    frame_ids: list[str]
    hashes: list[str]
    descriptors: np.ndarray

    @property
    def hash_set(self) -> set[str]:
        return set(self.hashes)


def _blob_name(version_id: str, key: str) -> str:
    return f"selection-reference-{version_id}-{key}.npz"


def _load(stores: Stores, name: str) -> Reference | None:
    found = stores.blobs.find_one({"filename": name})
    if found is None:
        return None
    with np.load(io.BytesIO(found.read())) as npz:
        meta = json.loads(bytes(npz["meta"]).decode())
        return Reference(frame_ids=meta["frame_ids"], hashes=meta["hashes"], descriptors=npz["descriptors"])


def _save(stores: Stores, name: str, ref: Reference) -> None:
    buf = io.BytesIO()
    meta = np.frombuffer(json.dumps({"frame_ids": ref.frame_ids, "hashes": ref.hashes}).encode(), dtype=np.uint8)
    np.savez_compressed(buf, descriptors=np.asarray(ref.descriptors, dtype=np.float32), meta=meta)
    stores.blobs.put(buf.getvalue(), filename=name)


def describe_frame_ids(stores: Stores, frame_ids: list[str], descriptor: Descriptor, batch: int = 500
                       ) -> tuple[list[str], np.ndarray]:
    """Structure hashes and descriptors of stored frames, read and described in batches."""
    hashes: list[str] = []
    parts: list[np.ndarray] = []
    for lo in range(0, len(frame_ids), batch):
        chunk = frame_ids[lo : lo + batch]
        docs = {d["_id"]: d for d in stores.frames.find({"_id": {"$in": chunk}})}
        atoms = []
        for fid in chunk:
            a = LabeledFrame.from_document(docs[fid]).to_atoms()
            a.calc = None
            atoms.append(a)
        hashes += [frame_hash(a) for a in atoms]
        parts.append(descriptor.compute(atoms))
    desc = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    return hashes, desc


def dataset_reference(stores: Stores, version_id: str, descriptor: Descriptor) -> Reference:
    """The reference of ``version_id`` (cached in the store; built from its parent's plus its new frames)."""
    name = _blob_name(version_id, descriptor.key)
    cached = _load(stores, name)
    if cached is not None:
        return cached
    dataset = Dataset(stores)
    version = dataset.get_version(version_id)
    ids = list(dataset.manifest(version.id))
    base = Reference([], [], np.zeros((0, 0), np.float32))
    if version.parent:
        base = dataset_reference(stores, version.parent, descriptor)
    known = set(base.frame_ids)
    new = [i for i in ids if i not in known]
    hashes, desc = describe_frame_ids(stores, new, descriptor)
    in_version = set(ids)  # once: built per parent frame, this was O(n^2) (27 min at 10^5 frames)
    keep = [k for k, fid in enumerate(base.frame_ids) if fid in in_version]
    parts = [base.descriptors[keep]] if keep and base.descriptors.size else []
    if len(desc):
        parts.append(desc)
    ref = Reference(frame_ids=[base.frame_ids[k] for k in keep] + new,
                    hashes=[base.hashes[k] for k in keep] + hashes,
                    descriptors=np.concatenate(parts) if parts else np.zeros((0, 0), np.float32))
    _save(stores, name, ref)
    logger.info("selection reference of %s: %d frames (%d described now)", version.id, len(ref.frame_ids), len(new))
    return ref
