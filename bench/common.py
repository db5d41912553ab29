"""Shared helpers of the benchmark scripts: machine description and JSON output."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """What the numbers were measured on."""
    import importlib.metadata as md

    versions = {}
    for dist in ("mlipflow", "fireworks", "jobflow", "litemongo", "torch", "mace-torch", "chgnet"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[dist] = md.version(dist)
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_result(name: str, payload: dict) -> Path:
    """Write ``bench/results/<name>.json`` with the machine description and print where."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2))
    print(f"wrote {path}")
    return path
