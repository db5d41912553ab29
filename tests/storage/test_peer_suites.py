"""FireWorks', maggma's and jobflow's own store-dependent tests, run against the embedded store.

Each suite runs in a subprocess with every ``MongoClient`` pointed at a fresh embedded store (see
``peer_suites.py``).  A test that fails must be one of the suite's known failures, each listed with its
reason (a data file the wheel does not ship, an optional package that is not installed, ...): any other
failure is a place where the embedded store does not behave as MongoDB does.  Slow (minutes): run with
``-m slow``.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

logger = logging.getLogger(__name__)


def _peer_suites():
    """``peer_suites.py`` next to this file (tests are imported by path, not as a package)."""
    spec = importlib.util.spec_from_file_location("peer_suites", Path(__file__).with_name("peer_suites.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("peer_suites", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


peer = _peer_suites()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(peer.SUITES))
def test_peer_suite_passes_on_the_embedded_store(name):
    suite = peer.SUITES[name]
    try:
        peer.tests_of(suite)
    except peer.SuiteUnavailableError as exc:
        pytest.skip(str(exc))
    result = peer.run_suite(name)
    failed = {test for test, outcome in result.outcomes.items() if outcome == "failed"}
    logger.warning("%s on the embedded store: %d passed, %d failed (%d known), %d skipped of %d in %.0f s", name,
                   result.count("passed"), len(failed), len(failed & set(suite.known)),
                   result.count("skipped"), len(result.outcomes), result.seconds)
    assert result.count("passed") > 0, result.log[-3000:]
    unexpected = sorted(failed - set(suite.known))
    assert not unexpected, f"{name}: unexpected failures {unexpected}\n{result.log[-6000:]}"
