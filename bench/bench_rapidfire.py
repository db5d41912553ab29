"""Per-firework overhead of FireWorks' rapidfire on the embedded store.

Adds N trivial fireworks (a PyTask computing ``math.sqrt(4)``), each its own workflow, and runs them
with ``mlipflow worker`` (FireWorks' rapidfire) in 1 and then 3 worker processes.  Writes
``bench/results/rapidfire.json`` with the load average, since other work on the machine inflates it.

Run: ``python bench/bench_rapidfire.py [N]`` (default 1000).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result


def _add(launchpad, n: int) -> None:
    from fireworks import Firework, PyTask

    for i in range(n):
        launchpad.add_wf(Firework(PyTask(func="math.sqrt", args=[4]), name=f"trivial-{i}"))


def run(n: int) -> dict:
    results = {}
    for workers in (1, 3):
        with tempfile.TemporaryDirectory() as home:
            os.environ["MLIPFLOW_HOME"] = home
            from mlipflow.settings import load_settings
            from mlipflow.storage import get_stores

            stores = get_stores(load_settings())
            t0 = time.perf_counter()
            _add(stores.launchpad, n)
            t_add = time.perf_counter() - t0
            t0 = time.perf_counter()
            cmd = [sys.executable, "-m", "mlipflow", "worker", "--sleep", "1"]
            procs = [subprocess.Popen(cmd, cwd=home, stdout=subprocess.DEVNULL) for _ in range(workers)]
            for p in procs:
                p.wait()
            t_run = time.perf_counter() - t0
            done = stores.launchpad.get_fw_ids({"state": "COMPLETED"}, count_only=True)
            launches = stores.launchpad.launches.count_documents({})
            results[f"{workers}_workers"] = {
                "fireworks": n,
                "completed": done,
                "launches": launches,
                "add_wf_s": round(t_add, 3),
                "run_s": round(t_run, 3),
                "per_firework_ms": round(1000 * t_run / n, 2),
                "throughput_fw_per_s": round(n / t_run, 1),
                "load_average_after": os.getloadavg(),
            }
            print(workers, "workers:", results[f"{workers}_workers"])
    return results


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    write_result("rapidfire", {"description": __doc__.strip().splitlines()[0], "results": run(n)})
