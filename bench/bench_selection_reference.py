"""Cost of the selection's dataset reference at 10^4 and 10^5 labeled frames; writes
``bench/results/selection_reference.json``.

The reference of a selection is the campaign's current dataset version (:mod:`mlipflow.selection.reference`):
its structure hashes and SOAP descriptors are built once per version and stored in GridFS; a child version loads
its parent's and describes only its new frames.  Measured here, in an embedded store holding N labeled 16-atom
bcc Li frames in one version:

* ``cold``: the first selection of a campaign at that size (every frame read, hashed and described);
* ``next iteration``: a child version with 100 new frames (the parent's reference loaded, 100 frames described);
* ``whole store`` (the former behaviour, every iteration): every labeled frame read and hashed, descriptors from the
  per-frame descriptor cache (already filled), as ``select_frames`` did before it was scoped to the campaign.

Each is followed by the same selection (trust window, dedup, FPS, budget 50) on a 2,000-frame explored pool.
Storing 10^5 frames in the embedded store takes about an hour here, so at 10^5 the parent version (its manifest
and its stored reference: 10^5 hashes and SOAP vectors, noise around described frames) is written directly, and
the next iteration is measured for real on it; the cold build and the whole-store reference at 10^5 are
extrapolated linearly from 10^4 and flagged ``extrapolated``.
Run: ``python bench/bench_selection_reference.py [--sizes 10000 100000]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, peak_rss_mb, write_result

from mlipflow.data import Dataset, LabeledFrame, LabelerInfo, Provenance
from mlipflow.settings import load_settings
from mlipflow.storage import get_stores

LABELER = LabelerInfo(name="lj", kind="surrogate", version="bench")
SOAP = {"species": ["Li"], "r_cut": 4.5, "n_max": 4, "l_max": 3}


def _frames(n: int, seed: int) -> list[LabeledFrame]:
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    base = bulk("Li", "bcc", a=3.44, cubic=True).repeat((2, 2, 2))
    out = []
    for i in range(n):
        a = base.copy()
        a.positions += rng.normal(0, 0.08, a.positions.shape)
        out.append(LabeledFrame.from_atoms(a, LABELER, energy=-1.0, forces=np.zeros((len(a), 3)),
                                           provenance=Provenance(family="bulk", group=f"g{seed}-{i // 50}")))
    return out


def _pool(stores, n: int = 2000) -> list[str]:
    from ase.build import bulk

    from mlipflow.sampling import TrajectoryStore

    rng = np.random.default_rng(99)
    base = bulk("Li", "bcc", a=3.44, cubic=True).repeat((2, 2, 2))
    ids = []
    for _ in range(4):
        with TrajectoryStore(stores).writer(base, metadata={"family": "bulk"}, chunk_frames=1000) as w:
            for _i in range(n // 4):
                a = base.copy()
                a.positions += rng.normal(0, 0.08, a.positions.shape)
                w.append(a, max_force_spread=float(rng.uniform(0.0, 0.6)))
        ids.append(w.id)
    return ids


def _select(stores, pool, version):
    from mlipflow.selection import SoapDescriptor, TrustWindow, TrustWindowSelector, select_frames

    return select_frames(stores, pool, trust=TrustWindowSelector(TrustWindow(0.05, 0.5)),
                         descriptor=SoapDescriptor(**SOAP), budget=50, reference_version=version, use_cache=False)


def _whole_store(stores, descriptor) -> float:
    """The former reference: every labeled frame of the store, read, hashed, described through the cache."""
    from mlipflow.selection.descriptors import DescriptorCache, frame_hash

    start = time.perf_counter()
    hashes, atoms = [], []
    for doc in stores.frames.find({"status": "labeled"}):
        a = LabeledFrame.from_document(doc).to_atoms()
        a.calc = None
        hashes.append(frame_hash(a))
        atoms.append(a)
    DescriptorCache(stores).describe(descriptor, atoms, hashes)
    return time.perf_counter() - start


def run_synthetic(n: int, per_frame_cold: float, per_frame_whole: float) -> dict:
    """10^5: a parent version written directly (manifest + stored reference), the next iteration measured."""
    import json

    from mlipflow.data.dataset import DatasetVersion
    from mlipflow.selection import SoapDescriptor
    from mlipflow.selection.reference import Reference, _blob_name, _save

    with tempfile.TemporaryDirectory(prefix="mlipflow-bench-ref-") as tmp:
        stores = get_stores(load_settings(home=Path(tmp)))
        descriptor = SoapDescriptor(**SOAP)
        t0 = time.perf_counter()
        sample = _frames(200, 1)
        atoms = []
        for f in sample:
            a = f.to_atoms()
            a.calc = None
            atoms.append(a)
        base = descriptor.compute(atoms)
        rng = np.random.default_rng(0)
        vectors = base[rng.integers(0, len(base), n)] + rng.normal(0, 1e-3, (n, base.shape[1])).astype(np.float32)
        ids = [f"{i:032x}" for i in range(n)]
        manifest = dict.fromkeys(ids, "train")
        file_id = stores.blobs.put(json.dumps(manifest).encode(), filename="dataset-bench-parent.json")
        parent = DatasetVersion(id="bench-parent", name="bench", fractions={"train": 1.0}, counts={"train": n},
                                config_types={"bulk": n}, labelers={LABELER.describe(): n}, manifest_file=file_id)
        stores.datasets.insert_one({"_id": parent.id, **parent.model_dump(exclude={"id"})})
        _save(stores, _blob_name(parent.id, descriptor.key), Reference(ids, [f"h{i}" for i in range(n)], vectors))
        setup_s = time.perf_counter() - t0
        dataset = Dataset(stores)
        more = _frames(100, 2)
        dataset.add_frames(more)
        child = dataset.create_version("bench", parent=parent.id, frame_ids=[f.content_hash for f in more],
                                       fractions={"train": 1.0})
        pool = _pool(stores)
        t = time.perf_counter()
        nxt = _select(stores, pool, child.id)
        next_s = time.perf_counter() - t
        return {"labeled_frames": n, "setup_s": setup_s, "synthetic_parent": True,
                "cold_selection_s": per_frame_cold * n, "cold_extrapolated": True,
                "next_iteration_selection_s": next_s,
                "whole_store_reference_s_per_iteration": per_frame_whole * n, "whole_store_extrapolated": True,
                "reference_frames": [None, nxt.counts["reference_frames"]], "picked": [None, nxt.counts["picked"]],
                "peak_rss_mb": peak_rss_mb()}


def run(n: int) -> dict:
    from mlipflow.selection import SoapDescriptor
    from mlipflow.selection.descriptors import DescriptorCache, frame_hash

    with tempfile.TemporaryDirectory(prefix="mlipflow-bench-ref-") as tmp:
        stores = get_stores(load_settings(home=Path(tmp)))
        dataset = Dataset(stores)
        t0 = time.perf_counter()
        frames = _frames(n, 1)
        docs = [f.to_document() for f in frames]
        for lo in range(0, n, 2000):  # bulk insert: the set-up is not what is measured
            stores.frames.insert_many(docs[lo : lo + 2000])
        version = dataset.create_version("bench", fractions={"train": 1.0})
        setup_s = time.perf_counter() - t0
        pool = _pool(stores)
        t = time.perf_counter()
        cold = _select(stores, pool, version.id)
        cold_s = time.perf_counter() - t
        more = _frames(100, 2)
        dataset.add_frames(more)
        child = dataset.create_version("bench", parent=version.id, frame_ids=[f.content_hash for f in more],
                                       fractions={"train": 1.0})
        t = time.perf_counter()
        nxt = _select(stores, pool, child.id)
        next_s = time.perf_counter() - t
        # the former behaviour, with its per-frame cache already filled (its best case)
        descriptor = SoapDescriptor(**SOAP)
        atoms = []
        for f in frames + more:
            a = f.to_atoms()
            a.calc = None
            atoms.append(a)
        DescriptorCache(stores).describe(descriptor, atoms, [frame_hash(a) for a in atoms])
        whole_s = _whole_store(stores, descriptor)
        return {"labeled_frames": n, "setup_s": setup_s, "cold_selection_s": cold_s,
                "next_iteration_selection_s": next_s, "whole_store_reference_s_per_iteration": whole_s,
                "reference_frames": [cold.counts["reference_frames"], nxt.counts["reference_frames"]],
                "picked": [cold.counts["picked"], nxt.counts["picked"]], "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000])
    parser.add_argument("--synthetic", type=int, nargs="*", default=[100_000],
                        help="sizes measured on a directly written parent version")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = [run(n) for n in args.sizes]
    if args.synthetic and rows:
        last = rows[-1]
        pool_s = last["next_iteration_selection_s"]  # the selection without building a large reference
        per_cold = max(0.0, last["cold_selection_s"] - pool_s) / last["labeled_frames"]
        per_whole = last["whole_store_reference_s_per_iteration"] / last["labeled_frames"]
        rows += [run_synthetic(n, per_cold, per_whole) for n in args.synthetic]
    write_result("selection_reference", {"description": __doc__.split("\n\n")[1].replace("\n", " "),
                                         "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
