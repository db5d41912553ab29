"""Surrogate labeler: any ASE calculator, named and versioned, never reported as DFT.

The calculator is given by name (``chgnet``, ``emt``, ``lj``, ``morse``, ``toy-morse``), by an import path
``"package.module:factory"`` (a class or function returning an ASE ``Calculator``), or, for in-process use
only, by a callable.  Its name, version and keyword arguments are the labeler's settings, so labels of
different surrogates (CHGNet and SevenNet energies differ by 0.2–0.8 eV/atom) never share a content hash.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.data import LabelerInfo
from mlipflow.errors import ConfigError, LabelingError
from mlipflow.labeling.base import Labeler, LabelResult

logger = logging.getLogger(__name__)


def _chgnet(**kwargs: Any) -> Calculator:
    from chgnet.model import CHGNetCalculator

    kwargs.setdefault("use_device", "cpu")
    kwargs.setdefault("check_cuda_mem", False)
    return CHGNetCalculator(**kwargs)


def _emt(**kwargs: Any) -> Calculator:
    from ase.calculators.emt import EMT

    return EMT(**kwargs)


def _lj(**kwargs: Any) -> Calculator:
    from ase.calculators.lj import LennardJones

    return LennardJones(**kwargs)


def _morse(**kwargs: Any) -> Calculator:
    from ase.calculators.morse import MorsePotential

    return MorsePotential(**kwargs)


def _toy_morse(**kwargs: Any) -> Calculator:
    from mlipflow.training.synthetic import ToyMorseCalculator

    return ToyMorseCalculator(**kwargs)


#: calculator name -> (factory, package whose version labels it)
KNOWN_CALCULATORS: dict[str, tuple[Callable[..., Calculator], str]] = {
    "chgnet": (_chgnet, "chgnet"),
    "emt": (_emt, "ase"),
    "lj": (_lj, "ase"),
    "morse": (_morse, "ase"),
    "toy-morse": (_toy_morse, "mlipflow"),
}


#: the calculator class each known name builds (its parameters are what ``calculator_kwargs`` may hold)
CALCULATOR_CLASSES = {
    "chgnet": "chgnet.model:CHGNetCalculator",
    "emt": "ase.calculators.emt:EMT",
    "lj": "ase.calculators.lj:LennardJones",
    "morse": "ase.calculators.morse:MorsePotential",
    "toy-morse": "mlipflow.training.synthetic:ToyMorseCalculator",
}


def _named_parameters(function: Callable[..., Any]) -> tuple[set[str], bool]:
    """Names of a function's keyword-capable parameters, and whether it also takes ``**kwargs``."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return set(), True
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
    return names, any(p.kind is p.VAR_KEYWORD for p in parameters)


def calculator_parameters(calculator: str | Callable[..., Calculator]) -> set[str] | None:
    """The keyword arguments a surrogate calculator takes (``None``: it takes any, they cannot be checked).

    For a class, the parameters of every ``__init__`` up its bases as long as each passes ``**kwargs`` on,
    plus ASE's ``default_parameters`` (ASE's ``Calculator`` keeps unknown keywords silently, so a typo
    such as ``sigm`` for ``sigma`` would otherwise change nothing and say nothing).
    """
    if isinstance(calculator, str) and calculator in CALCULATOR_CLASSES:
        module_name, attr = CALCULATOR_CLASSES[calculator].split(":")
        target: Any = getattr(importlib.import_module(module_name), attr)
    else:
        target = _resolve(calculator)[0]
    if not isinstance(target, type):
        names, any_more = _named_parameters(target)
        return None if any_more else names
    allowed: set[str] = set()
    for klass in target.__mro__:
        allowed |= set(getattr(klass, "default_parameters", None) or {})
        if "__init__" not in vars(klass) or klass is object:
            continue
        names, any_more = _named_parameters(klass.__init__)
        allowed |= names
        if not any_more or klass is Calculator:
            return allowed
    return allowed


def _resolve(spec: str | Callable[..., Calculator]) -> tuple[Callable[..., Calculator], str | None]:
    if callable(spec):
        return spec, getattr(spec, "__module__", "").split(".")[0] or None
    if spec in KNOWN_CALCULATORS:
        return KNOWN_CALCULATORS[spec]
    if ":" in spec:
        module_name, attr = spec.split(":", 1)
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"surrogate calculator {spec!r} cannot be imported: {exc}") from exc
        return factory, module_name.split(".")[0]
    known = ", ".join(sorted(KNOWN_CALCULATORS))
    raise ConfigError(
        f"unknown surrogate calculator {spec!r}: use one of {known} or 'package.module:factory'"
    )


def _version_of(package: str | None) -> str | None:
    if not package or package == "__main__":
        return None
    try:
        return package_version(package)
    except PackageNotFoundError:
        return None


@dataclass
class SurrogateLabeler(Labeler):
    """Label structures with an ASE calculator (a universal potential, a toy model).

    Parameters
    ----------
    calculator
        ``chgnet``, ``emt``, ``lj``, ``morse``, ``toy-morse``, an import path ``"module:factory"``, or a
        callable returning an ASE calculator (in-process only: a callable is not serialisable for FireWorks).
    calculator_kwargs
        Keyword arguments of the factory (part of the labeler settings).
    name
        Name in provenance (default: the calculator's name).
    version
        Version in provenance (default: the version of the package that provides the calculator).
    compute_stress
        Ask the calculator for the stress (eV/Å³).
    torch_threads
        Threads torch may use (torch-based calculators; 1 is fastest on a busy 2-core machine).
    """

    calculator: str | Callable[..., Calculator] = "chgnet"
    calculator_kwargs: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    version: str | None = None
    compute_stress: bool = True
    torch_threads: int | None = 1

    def __post_init__(self) -> None:
        self._factory, package = _resolve(self.calculator)
        if self.name is None:
            self.name = self.calculator if isinstance(self.calculator, str) else self._factory.__name__
        if self.version is None:
            self.version = _version_of(package)
        self._calc: Calculator | None = None
        self.computes_stress = self.compute_stress

    @property
    def info(self) -> LabelerInfo:
        settings = {
            "calculator": self.name,
            "kwargs": dict(self.calculator_kwargs),
            "stress": self.compute_stress,
        }
        return LabelerInfo(name=str(self.name), kind="surrogate", version=self.version, settings=settings)

    def setup(self) -> None:
        if self._calc is None:
            self._calc = self._factory(**self.calculator_kwargs)
            torch = sys.modules.get("torch")  # only torch-based calculators have imported it
            if torch is not None and self.torch_threads:
                torch.set_num_threads(self.torch_threads)

    def ase_calculator(self) -> Calculator:
        """The (set up) ASE calculator itself: MD with it samples its own dynamics; it also relaxes and ranks cells."""
        self.setup()
        assert self._calc is not None
        return self._calc

    def label_one(self, structure: Structure, workdir: Path | None = None) -> LabelResult:
        """Evaluate the calculator on one structure (eV, eV/Å, eV/Å³)."""
        self.setup()
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = self._calc
        try:
            energy = float(atoms.get_potential_energy())
            forces = np.asarray(atoms.get_forces(), dtype=float)
            stress = np.asarray(atoms.get_stress(voigt=False), dtype=float) if self.compute_stress else None
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except Exception as exc:
            raise LabelingError(f"{self.name}: calculation failed: {type(exc).__name__}: {exc}") from exc
        if not math.isfinite(energy):
            logger.debug("%s returned a non-finite energy", self.name)
        return LabelResult(energy=energy, forces=forces, stress=stress)

    def as_dict(self) -> dict[str, Any]:
        if callable(self.calculator):
            raise ConfigError(
                f"surrogate labeler {self.name!r} holds a callable calculator, which cannot be serialised: "
                "give it as 'package.module:factory' to run it through FireWorks"
            )
        return super().as_dict()
