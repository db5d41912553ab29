"""A small campaign-shaped jobflow flow for tests of execution and progress (importable by workers).

Every job appends ``<name> <pid>`` to ``$DEMO_LOG``; a step with ``wait=True`` waits until the file
``$DEMO_GO`` exists, so that a test can kill its process while it runs.
"""

from __future__ import annotations

import os
import time
from typing import Any

from jobflow import Flow, Response, job


def named(job_: Any, name: str) -> Any:
    job_.name = name
    return job_


def _log(name: str) -> None:
    with open(os.environ["DEMO_LOG"], "a") as fh:
        fh.write(f"{name} {os.getpid()}\n")


@job
def step(name: str, wait: bool = False, after: Any = None) -> dict:
    """Log, optionally wait for $DEMO_GO, return a small document with ``counts`` like a label batch."""
    _log(name)
    while wait and not os.path.exists(os.environ["DEMO_GO"]):
        time.sleep(0.05)
    return {"name": name, "counts": {"labeled": 2}, "frame_ids": ["a", "b"]}


@job
def plan(n: int, after: Any = None) -> Response:
    """Replace itself by ``n`` steps (as a labeling planner does)."""
    batches = [named(step(f"label batch {i}"), f"label batch {i}") for i in range(n)]
    gather = named(step("label summary", after=[b.output for b in batches]), "label summary")
    return Response(replace=Flow([*batches, gather], output=gather.output))


@job
def decide(iteration: int, after: Any = None) -> Response:
    """Decide: add one more step (as the campaign's decision job adds the next iteration)."""
    _log(f"decide {iteration}")
    added = named(step("picked_structures_job"), "picked_structures_job")
    added.update_metadata({"iteration": iteration, "stage": "pick"})
    return Response(output={"iteration": iteration, "decision": {"decision": "continue", "reason": "demo"}},
                    addition=Flow([added]))


def _tag(obj: Any, iteration: int, stage: str, dynamic: bool = True) -> Any:
    obj.update_metadata({"iteration": iteration, "stage": stage}, dynamic=dynamic)
    return obj


def make(name: str = "demo", wait: bool = False) -> Flow:
    """structures -> label (planned: 2 batches) -> train (optionally waiting) -> decide (adds a pick)."""
    first = _tag(named(step("structures"), "structures"), 0, "structures")
    labels = _tag(plan(2, after=first.output), 0, "label")
    labels.metadata["plans"] = True
    labels.name = "label iteration 0"
    train = _tag(named(step("mace train 1/2", wait=wait, after=labels.output), "mace train 1/2"), 0, "train")
    decision = _tag(decide(1, after=train.output), 1, "decide", dynamic=False)
    decision.name = "decide iteration 1"
    flow = Flow([first, labels, train, decision], name=name)
    flow.update_metadata({"campaign": name})
    return flow


if __name__ == "__main__":  # run the demo campaign here (used by the kill tests)
    import sys

    import demo_flow  # the jobs must name an importable module, not __main__
    from mlipflow.execution import run_here
    from mlipflow.storage import get_stores

    run_here(demo_flow.make(sys.argv[1], wait=True), get_stores(), campaign=sys.argv[1], spec={"demo": 1})
