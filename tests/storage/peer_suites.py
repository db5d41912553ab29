"""Run the store-dependent tests of FireWorks, maggma and jobflow against the embedded store.

Used by :mod:`test_peer_suites` (and usable by hand: ``python tests/storage/peer_suites.py fireworks``).
Every ``MongoClient`` the peer's tests make becomes an embedded client on one fresh directory (see
``peer_plugin.py``); the peer's own test files run from a copy, so that tests which write next to
themselves never touch the installed package.

Where the tests come from:

* from the peers' sdists, fetched once with pip from the package registry (``pip download --no-binary``)
  into ``MLIPFLOW_PEER_CACHE`` (default ``~/.cache/mlipflow/peer-tests``); jobflow's sdist holds only
  ``test_settings.py`` and ``test_version.py``, not its store tests;
* **FireWorks** also ships its tests inside its wheel (``fireworks/**/tests``), used when the sdist cannot
  be fetched; the wheel lacks their data files (the tests that read one are known failures then);
* ``MLIPFLOW_PEER_TESTS_<NAME>`` (e.g. ``MLIPFLOW_PEER_TESTS_JOBFLOW``) may name a directory that holds
  the peer's ``tests`` (a checkout of its repository) instead.

Known failures are listed per suite with their reason; none of them is a defect of the embedded store.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

MISSING_DATA = "a data file the wheel does not ship"
FIREWORKS_KNOWN = {
    "user_objects/firetasks/tests/test_fileio_tasks.py::FileWriteDeleteTest::test_run": MISSING_DATA,
    "user_objects/firetasks/tests/test_fileio_tasks.py::CompressDecompressArchiveDirTest::test_compress_dir":
        MISSING_DATA,
    "user_objects/firetasks/tests/test_filepad_tasks.py::FilePadTasksTest::test_addfilesfrompatterntask_run":
        MISSING_DATA,
    "user_objects/firetasks/tests/test_filepad_tasks.py::FilePadTasksTest::test_addfilestask_run": MISSING_DATA,
    "user_objects/firetasks/tests/test_filepad_tasks.py::FilePadTasksTest::test_getfilestask_run": MISSING_DATA,
    "user_objects/queue_adapters/tests/test_common_adapter.py::CommonAdapterTest::test_override": MISSING_DATA,
    "user_objects/queue_adapters/tests/test_common_adapter.py::CommonAdapterTest::test_serialization": MISSING_DATA,
    "user_objects/queue_adapters/tests/test_common_adapter.py::CommonAdapterTest::test_status_cmd_pbs": MISSING_DATA,
    "user_objects/queue_adapters/tests/test_common_adapter.py::CommonAdapterTest::test_yaml_load": MISSING_DATA,
    "utilities/tests/test_filepad.py::FilePadTest::test_add_file": MISSING_DATA,
    "utilities/tests/test_filepad.py::FilePadTest::test_add_file_with_no_identifier": MISSING_DATA,
    "utilities/tests/test_filepad.py::FilePadTest::test_delete_file": MISSING_DATA,
    "utilities/tests/test_filepad.py::FilePadTest::test_get_file": MISSING_DATA,
    "utilities/tests/test_filepad.py::FilePadTest::test_update_file": MISSING_DATA,
    "utilities/tests/test_filepad.py::FilePadTest::test_update_file_by_id": MISSING_DATA,
    "utilities/tests/test_fw_serializers.py::SerializationTest::test_unicode_json_file": MISSING_DATA,
    "utilities/tests/test_fw_serializers.py::SerializationTest::test_unicode_yaml_file": MISSING_DATA,
    "utilities/tests/test_visualize.py::test_wf_to_graph": "graphviz is not installed",
    "utilities/tests/test_dagflow.py": "python-igraph is not installed (the module does not import)",
    "core/tests/test_launchpad.py::LaunchPadOfflineTest::test__recover_completed":
        "FireWorks 2.1.4 calls monty's zopen without the mode the installed monty requires",
    "core/tests/test_launchpad.py::GridfsStoredDataTest::test_many_detours_offline":
        "FireWorks 2.1.4 calls monty's zopen without the mode the installed monty requires",
}
MAGGMA_KNOWN = {
    "tests/stores/test_mongolike.py::test_mongostore_connect_reconnect":
        "asserts the collection is a pymongo.collection.Collection (the embedded one is mongomock's)",
}
JOBFLOW_KNOWN = {
    "tests/core/test_job.py::test_job_decorator_config_shared":
        "a test newer than the installed jobflow 0.4.0 (of a fix the release does not have)",
}


@dataclass
class Suite:
    """One peer's tests: where they are and what to run of them."""

    name: str
    paths: list[str]
    known: dict[str, str] = field(default_factory=dict)
    deselect: dict[str, str] = field(default_factory=dict)
    #: directory of the sdist that holds ``paths``
    sdist_dir: str = ""
    #: the installed package holds ``paths`` too (a fallback when its sdist cannot be fetched)
    in_wheel: bool = False
    #: a store-dependent test file the tests must include (else they are not the suite meant here)
    needs: str = ""


SUITES = {
    "fireworks": Suite("fireworks", ["."], FIREWORKS_KNOWN, sdist_dir="fireworks", in_wheel=True),
    "maggma": Suite("maggma", ["tests/stores/test_mongolike.py", "tests/stores/test_gridfs.py"], MAGGMA_KNOWN,
                    deselect={"tests/stores/test_mongolike.py::test_mongostore_distinct":
                              "inserts 1,000,000 documents (minutes on the embedded store)"}),
    "jobflow": Suite("jobflow", ["tests"], JOBFLOW_KNOWN, needs="tests/managers/test_fireworks.py"),
}


@dataclass
class SuiteResult:
    """Outcome per test id (``passed``, ``failed``, ``skipped``) and the wall time (s)."""

    outcomes: dict[str, str]
    seconds: float
    log: str

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)


class SuiteUnavailableError(Exception):
    """The peer's tests are neither installed nor obtainable from the package registry."""


def _cache() -> Path:
    return Path(os.environ.get("MLIPFLOW_PEER_CACHE") or Path.home() / ".cache" / "mlipflow" / "peer-tests")


def tests_of(suite: Suite) -> Path:
    """Directory that holds the suite's ``paths`` (for the wheel: the installed package)."""
    override = os.environ.get(f"MLIPFLOW_PEER_TESTS_{suite.name.upper()}")
    if override:
        return Path(override)
    try:
        return _from_sdist(suite)
    except SuiteUnavailableError:
        if not suite.in_wheel:
            raise
        return Path(importlib.import_module(suite.name).__file__).parent


def _from_sdist(suite: Suite) -> Path:
    version = importlib.metadata.version(suite.name)
    root = _cache() / f"{suite.name}-{version}"
    if not root.is_dir():
        downloads = _cache() / "sdists"
        downloads.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
                               suite.name, "-d", str(downloads), f"{suite.name}=={version}"],
                              capture_output=True, text=True, timeout=600)
        archives = sorted(downloads.glob(f"{suite.name}-{version}.tar.gz"))
        if not archives:
            raise SuiteUnavailableError(f"no sdist of {suite.name} {version}: {proc.stderr.strip()[-300:]}")
        with tarfile.open(archives[0]) as tar:
            tar.extractall(_cache(), filter="data")
    root = root / suite.sdist_dir
    missing = [p for p in [*suite.paths, suite.needs] if p and not (root / p).exists()]
    if missing:
        raise SuiteUnavailableError(f"the sdist of {suite.name} {version} has no {', '.join(missing)} (set "
                               f"MLIPFLOW_PEER_TESTS_{suite.name.upper()} to a checkout of its repository)")
    return root


def _outcomes(junit: Path, files: set[str]) -> dict[str, str]:
    """pytest-style ids (``path/to/test_x.py::Class::test``) -> outcome, from a junit report.

    ``files`` are the test tree's ``.py`` files (relative paths), listed before the run: a test may have
    compressed or removed its own files by now.
    """
    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        parts = [p for p in (case.get("classname") or "").split(".") if p]
        name = case.get("name") or ""
        if not parts:  # a module that could not be collected: junit names it in dotted form
            test_id = name.replace(".", "/") + ".py"
        else:
            test_id = ".".join(parts) + f"::{name}"
            for i in range(len(parts), 0, -1):  # the longest prefix of the class path that is a file
                candidate = "/".join(parts[:i]) + ".py"
                if candidate in files:
                    test_id = "::".join([candidate, *parts[i:], name])
                    break
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        outcomes[test_id] = outcome
    return outcomes


def run_suite(name: str, env: dict[str, str] | None = None, timeout: float = 3600) -> SuiteResult:
    """Run one peer suite on a fresh embedded store; ``env`` is added to the environment of pytest."""
    import time

    suite = SUITES[name]
    sources = tests_of(suite)
    work = Path(tempfile.mkdtemp(prefix=f"peer-{name}-"))
    try:
        tree = work / "src"
        shutil.copytree(sources, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (work / "pytest.ini").write_text("[pytest]\nmarkers =\n    mongodb: needs MongoDB\n")
        junit = work / "junit.xml"
        files = {str(p.relative_to(tree)) for p in tree.rglob("*.py")}
        deselect = [arg for test in suite.deselect for arg in ("--deselect", test)]
        cmd = [sys.executable, "-m", "pytest", "-c", str(work / "pytest.ini"), "--rootdir", str(tree),
               "-p", "peer_plugin", "-p", "no:cacheprovider", "--import-mode=importlib", "-q", "--timeout=600",
               "--continue-on-collection-errors", f"--junitxml={junit}", *deselect,
               *(str(tree / p) for p in suite.paths)]
        run_env = {**os.environ, "MLIPFLOW_PEER_STORE": str(work / "store"), "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]),
                   **(env or {})}
        start = time.monotonic()
        proc = subprocess.run(cmd, cwd=work, env=run_env, capture_output=True, text=True, timeout=timeout)
        seconds = time.monotonic() - start
        if not junit.exists():
            raise RuntimeError(f"pytest of {name} wrote no report:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return SuiteResult(_outcomes(junit, files), seconds, proc.stdout[-20000:])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":  # python tests/storage/peer_suites.py NAME [NAME ...]: counts per suite
    for suite_name in sys.argv[1:] or list(SUITES):
        result = run_suite(suite_name)
        failed = sorted(t for t, o in result.outcomes.items() if o == "failed")
        print(f"{suite_name}: {result.count('passed')} passed, {len(failed)} failed, {result.count('skipped')} "
              f"skipped of {len(result.outcomes)} in {result.seconds:.0f} s")
        for test in failed:
            known = SUITES[suite_name].known.get(test)
            print(f"  failed: {test}" + (f"  (known: {known})" if known else ""))
