"""Models to benchmark, as ASE calculators: the project's MACE models, universal baselines, foundation files.

A model is named by a *spec* string so that it can cross job boundaries:

``model:<id>``
    A model (or committee) of the registry (:mod:`mlipflow.training.registry`), loaded with mace-torch.
``mace:<path>``
    A mace-torch ``.model`` file the user has (e.g. a foundation model downloaded elsewhere).
``chgnet``
    CHGNet; its weights ship in the ``chgnet`` wheel (CHGNet 0.3.0 weights in chgnet 0.4.2) and load offline.
``sevennet`` / ``sevennet:<model>``
    SevenNet-0 from the ``sevenn`` wheel, when installed (it is not a dependency: ``sevenn`` 0.13.0 requires
    e3nn 0.6.0 while mace-torch 0.3.16 pins e3nn 0.4.4, so both cannot share one environment).
``emt``, ``lj``, ``morse``, ``toy-morse``, ``package.module:factory``
    Any other calculator known to :mod:`mlipflow.labeling.surrogate` (cheap potentials for tests).

Keyword arguments pass through to the calculator.  Torch threads follow the settings (default 1).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
from typing import Any

from ase.calculators.calculator import Calculator

from mlipflow.errors import ConfigError

logger = logging.getLogger(__name__)

#: universal potentials whose weights ship inside their wheels (no download at run time)
BASELINES = {"chgnet": "chgnet", "sevennet": "sevenn"}


def available_baselines() -> dict[str, str | None]:
    """Baseline name -> installed package version, or ``None`` when the package is not installed."""
    out: dict[str, str | None] = {}
    for name, dist in BASELINES.items():
        try:
            out[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def chgnet_calculator(**kwargs: Any) -> Calculator:
    """CHGNet as an ASE calculator on CPU (weights from the wheel)."""
    from chgnet.model import CHGNetCalculator

    kwargs.setdefault("use_device", "cpu")
    kwargs.setdefault("check_cuda_mem", False)
    return CHGNetCalculator(**kwargs)


def sevennet_calculator(model: str = "7net-0", **kwargs: Any) -> Calculator:
    """SevenNet as an ASE calculator (weights from the ``sevenn`` wheel).

    Raises
    ------
    ConfigError
        If ``sevenn`` is not installed.
    """
    if importlib.util.find_spec("sevenn") is None:
        raise ConfigError(
            "SevenNet baseline needs the 'sevenn' package, which is not installed: it requires e3nn 0.6 and "
            "cannot share an environment with mace-torch 0.3.16 (e3nn 0.4.4); run it from a separate venv"
        )
    from sevenn.calculator import SevenNetCalculator

    import mlipflow  # noqa: F401 - sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD for e3nn's constants under torch >= 2.6

    kwargs.setdefault("device", "cpu")
    return SevenNetCalculator(model=model, **kwargs)


def _set_threads(threads: int | None) -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and threads:
        torch.set_num_threads(threads)


def calculator_from_spec(spec: str, *, stores: Any = None, torch_threads: int | None = 1, **kwargs: Any) -> Calculator:
    """Build the ASE calculator named by ``spec`` (see module docstring).

    Parameters
    ----------
    spec
        Model spec.
    stores
        Stores holding the registry (for ``model:<id>``; default :func:`mlipflow.storage.get_stores`).
    torch_threads
        Threads for torch-based models (1 is fastest on a busy 2-core machine).
    kwargs
        Passed to the calculator.
    """
    if spec.startswith("model:"):
        from mlipflow.storage import get_stores
        from mlipflow.training.registry import ModelRegistry
        from mlipflow.training.trainer import load_calculator

        registry = ModelRegistry(stores or get_stores())
        model_id = spec.split(":", 1)[1]
        record = registry.get(model_id)
        paths = registry.member_files(model_id) if record.kind == "committee" else registry.model_file(model_id)
        calc = load_calculator(paths, **kwargs)
    elif spec.startswith("mace:"):
        from mlipflow.training.trainer import load_calculator

        calc = load_calculator(spec.split(":", 1)[1], **kwargs)
    elif spec == "chgnet":
        calc = chgnet_calculator(**kwargs)
    elif spec == "sevennet" or spec.startswith("sevennet:"):
        calc = sevennet_calculator(spec.split(":", 1)[1] if ":" in spec else "7net-0", **kwargs)
    else:
        from mlipflow.labeling.surrogate import KNOWN_CALCULATORS

        if spec in KNOWN_CALCULATORS:
            calc = KNOWN_CALCULATORS[spec][0](**kwargs)
        elif ":" in spec:
            module, attr = spec.split(":", 1)
            try:
                factory = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f"model spec {spec!r} cannot be imported: {exc}") from exc
            calc = factory(**kwargs)
        else:
            known = ", ".join(["model:<id>", "mace:<path>", "chgnet", "sevennet", *sorted(KNOWN_CALCULATORS)])
            raise ConfigError(f"unknown model spec {spec!r}: use one of {known} or 'package.module:factory'")
    _set_threads(torch_threads)
    return calc
