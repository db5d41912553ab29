"""Selection speed and memory: 10k and 100k frames, descriptors cached and not.

Pool: synthetic trajectories of rattled 16-atom bcc Li cells (10 trajectories, two families) with a random max
force spread per frame, stored in an embedded store like real sampling output.  Selection: trust window
[0.05, 0.5] eV/Å, SOAP (r_cut 4.5 Å, n_max 4, l_max 3, frame average), PCA + k-means (MiniBatchKMeans above 20k
frames) and FPS, budget 500.  Each case runs in its own process so that its peak RSS is its own.

* ``cold``: descriptors computed (and written to the cache) during the run;
* ``cached``: every descriptor already in the cache.
* 100k ``cold`` is not run, to keep the bench short on a shared machine; it is extrapolated as the 100k cached
  time plus the number of candidates x the per-frame descriptor cost measured at 10k (cold minus cached), and
  flagged ``extrapolated``.  For the same reason the 100k cache is filled with SOAP vectors of 2,000 computed
  frames plus small noise (the timing of a cached run does not depend on the vector values).

Run: ``python bench/bench_selection.py`` -> ``bench/results/selection.json``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

N_TRAJ = 10
BUDGET = 500
SOAP = {"species": ["Li"], "r_cut": 4.5, "n_max": 4, "l_max": 3}


def _stores(home: str):
    os.environ["MLIPFLOW_HOME"] = home
    from mlipflow.settings import load_settings
    from mlipflow.storage import get_stores

    return get_stores(load_settings())


def setup(n: int, home: str) -> dict:
    from ase.build import bulk

    from mlipflow.sampling import TrajectoryStore

    stores = _stores(home)
    rng = np.random.default_rng(0)
    base = bulk("Li", "bcc", a=3.44, cubic=True).repeat((2, 2, 2))
    ids = []
    for t in range(N_TRAJ):
        fam = "bulk" if t % 2 == 0 else "interface"
        with TrajectoryStore(stores).writer(base, metadata={"family": fam}, chunk_frames=1000) as w:
            for i in range(n // N_TRAJ):
                a = base.copy()
                a.positions += rng.normal(0, 0.05 + 0.1 * rng.random(), a.positions.shape)
                w.append(a, step=i * 10, target_temperature=600.0, max_force_spread=0.6 * rng.random())
        ids.append(w.id)
    return {"trajectory_ids": ids}


def fill_cache(home: str, ids: list[str]) -> dict:
    """Fill the descriptor cache for every frame: SOAP of 2,000 frames, cycled with noise (see docstring)."""
    from mlipflow.sampling import TrajectoryStore
    from mlipflow.selection import DescriptorCache, SoapDescriptor, frame_hash

    stores = _stores(home)
    soap = SoapDescriptor(**SOAP)
    cache = DescriptorCache(stores)
    rng = np.random.default_rng(1)
    basis = None
    for tid in ids:
        frames = TrajectoryStore(stores).read(tid)
        if basis is None:
            basis = soap.compute(frames[:2000])
        hashes = [frame_hash(a) for a in frames]
        vecs = basis[np.arange(len(frames)) % len(basis)] * (1 + 0.01 * rng.standard_normal((len(frames), 1)))
        cache.put_many(soap.key, hashes, vecs.astype(np.float32))
    return {}


def run(home: str, ids: list[str], method: str, use_cache: bool) -> dict:
    from common import peak_rss_mb

    from mlipflow.selection import SoapDescriptor, TrustWindow, TrustWindowSelector, select_frames

    stores = _stores(home)
    t = time.perf_counter()
    res = select_frames(stores, ids, trust=TrustWindowSelector(TrustWindow(0.05, 0.5)),
                        descriptor=SoapDescriptor(**SOAP), method=method, budget=BUDGET, seed=0,
                        use_cache=use_cache)
    return {"seconds": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb(), "counts": res.counts}


def child(argv: list[str]) -> None:
    action, home = argv[0], argv[1]
    if action == "setup":
        out = setup(int(argv[2]), home)
    elif action == "fill":
        out = fill_cache(home, json.loads(argv[2]))
    else:
        out = run(home, json.loads(argv[2]), argv[3], argv[4] == "cache")
    print("RESULT " + json.dumps(out))


def call(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[7:])


def main() -> None:
    from common import write_result

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    log = logging.getLogger("bench_selection")
    rows = []
    per_frame_soap = None
    for n in (10_000, 100_000):
        with tempfile.TemporaryDirectory() as home:
            t = time.perf_counter()
            ids = json.dumps(call("setup", home, str(n))["trajectory_ids"])
            log.info("%d frames written in %.0f s", n, time.perf_counter() - t)
            if n == 10_000:
                cold = call("run", home, ids, "kmeans", "cache")  # computes and caches every descriptor
                rows.append({"n_frames": n, "method": "kmeans", "descriptors": "cold (computed + cached)", **cold})
                log.info("%s", rows[-1])
            else:
                call("fill", home, ids)
            for method in ("kmeans", "fps"):
                warm = call("run", home, ids, method, "cache")
                rows.append({"n_frames": n, "method": "minibatch-kmeans" if n > 20_000 and method == "kmeans"
                             else method, "descriptors": "cached", **warm})
                log.info("%s", rows[-1])
            if n == 10_000:
                per_frame_soap = (cold["seconds"] - rows[-2]["seconds"]) / cold["counts"]["candidates"]
            else:
                cached = rows[-2]
                rows.append({"n_frames": n, "method": "minibatch-kmeans", "descriptors": "cold (extrapolated)",
                             "seconds": cached["seconds"] + per_frame_soap * cached["counts"]["candidates"],
                             "peak_rss_mb": cached["peak_rss_mb"], "extrapolated": True,
                             "counts": cached["counts"]})
    write_result("selection", {
        "description": "select_frames on synthetic 16-atom Li trajectories: trust window [0.05, 0.5] eV/Å, "
                       f"SOAP {SOAP}, budget {BUDGET}, embedded store, 1 process on a shared 2-core machine",
        "soap_seconds_per_frame": per_frame_soap,
        "results": rows,
    })


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
