"""Run independent tasks of one job in worker processes (MD walkers, committee members, labels).

A job that holds several independent pieces of work (walkers of an MD run, members of a committee) uses the
cores of its node through :func:`map_in_processes`: a pool of *spawned* processes (never forked: a process
forked after the store is opened would share its locks and SQLite connections), each of which builds its own
calculator once from a picklable builder and opens its own stores from the parent's settings.  Results come
back in task order, so the outcome does not depend on the number of processes.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What a worker process holds: its calculator (built once) and its stores (or ``None``)."""

    calculator: Any = None
    stores: Any = None


_CONTEXT = WorkerContext()


def _init(builder: Any, settings: Any, with_stores: bool,
          log_setup: dict[str, Any] | None = None) -> None:  # pragma: no cover - runs in the child
    import os

    from mlipflow.logs import apply_child_setup

    apply_child_setup(log_setup)  # the parent's log file and console rules, not raw warnings on the terminal

    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    if settings is not None:
        import torch

        torch.set_num_threads(max(1, int(settings.torch_threads)))
    if with_stores:
        from mlipflow.storage import get_stores

        _CONTEXT.stores = get_stores(settings)
    _CONTEXT.calculator = builder.build() if builder is not None else None
    if settings is not None:  # a calculator may set its own thread count: the processes share the cores
        import torch

        torch.set_num_threads(max(1, int(settings.torch_threads)))


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:  # pragma: no cover - runs in the child
    return fn(_CONTEXT, *args)


def map_in_processes(fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], *, processes: int,
                     builder: Any = None, settings: Any = None, with_stores: bool = False) -> list[Any]:
    """``[fn(context, *task) for task in tasks]`` computed in up to ``processes`` spawned processes.

    Parameters
    ----------
    fn
        A module-level function taking a :class:`WorkerContext` and the task's arguments.
    tasks
        Argument tuples (picklable).
    processes
        Worker processes (at most one per task).
    builder
        Object with ``build()`` returning the calculator each process uses (built once per process).
    settings
        :class:`~mlipflow.settings.MlipflowSettings` of the parent (its store and ``torch_threads``).
    with_stores
        Open the stores in every worker.
    """
    from mlipflow.logs import child_setup

    n = max(1, min(int(processes), len(tasks)))
    ctx = multiprocessing.get_context("spawn")
    logger.info("running %d tasks in %d processes", len(tasks), n)
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init,
                             initargs=(builder, settings, with_stores, child_setup())) as pool:
        futures = [pool.submit(_call, fn, tuple(task)) for task in tasks]
        return [f.result() for f in futures]
