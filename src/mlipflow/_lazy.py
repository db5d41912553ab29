"""Lazy package exports (PEP 562): ``from mlipflow.training import train_model`` works, but importing the
package alone (as the CLI does for every command) does not import torch, mace or pymatgen's builders."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``__getattr__`` and ``__dir__`` for a package whose names live in submodules.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name -> module that defines it.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:  # noqa: N807 - the PEP 562 hook
        return sorted(exports)

    return __getattr__, __dir__
