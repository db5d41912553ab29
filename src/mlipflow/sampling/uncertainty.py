"""Committee uncertainty: mean prediction and spread of several models on one frame.

A *committee* is either

* a sequence of ASE calculators (the members; the mean and the spread are computed here), or
* one ASE calculator whose results already hold per-member predictions: mace-torch's
  ``MACECalculator(model_paths=[...])`` (``forces_comm`` with shape (n_models, n_atoms, 3), ``energy_comm``)
  or mlipflow's training ``CommitteeCalculator`` (``forces_committee``, ``energies_committee``).

A plain single calculator is accepted too (a "committee of one": spreads are zero), so that the same MD code
runs with a single model for comparison.

Definitions (dpgen's): the per-atom force spread is ``sqrt(mean_m |F_m,i - <F_i>|^2)`` (eV/Å), the frame's
*max force spread* is its largest per-atom value, the *mean force spread* the average over atoms, and the
*energy spread per atom* is the standard deviation of the members' total energies divided by the number of
atoms (eV/atom).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from monty.json import MSONable

from mlipflow.errors import ConfigError

logger = logging.getLogger(__name__)

#: result keys holding per-member forces (n_models, n_atoms, 3) and per-member energies (n_models,)
MEMBER_FORCES_KEYS = ("forces_comm", "forces_committee")
MEMBER_ENERGY_KEYS = ("energy_comm", "energies_committee")
MEMBER_STRESS_KEYS = ("stress_comm", "stress_committee")

Committee = Calculator | Sequence[Calculator]


def force_spread(member_forces: np.ndarray) -> np.ndarray:
    """Per-atom force spread of a committee.

    Parameters
    ----------
    member_forces
        Forces of each member, shape (n_models, n_atoms, 3), eV/Å.

    Returns
    -------
    numpy.ndarray
        Shape (n_atoms,): root mean square over members of the distance of each member's force vector from
        the committee mean (eV/Å).
    """
    f = np.asarray(member_forces, dtype=float)
    if f.ndim != 3 or f.shape[-1] != 3:
        raise ValueError(f"member forces must have shape (n_models, n_atoms, 3), got {f.shape}")
    dev = f - f.mean(axis=0)
    return np.sqrt((dev**2).sum(axis=-1).mean(axis=0))


@dataclass(frozen=True)
class FrameUncertainty:
    """Uncertainty of one frame.

    Attributes
    ----------
    max_force_spread
        Largest per-atom force spread (eV/Å).
    mean_force_spread
        Mean per-atom force spread (eV/Å).
    energy_spread_per_atom
        Standard deviation of the members' energies divided by the number of atoms (eV/atom).
    """

    max_force_spread: float
    mean_force_spread: float
    energy_spread_per_atom: float

    def as_dict(self) -> dict[str, float]:
        return {
            "max_force_spread": self.max_force_spread,
            "mean_force_spread": self.mean_force_spread,
            "energy_spread_per_atom": self.energy_spread_per_atom,
        }


@dataclass
class CommitteePrediction:
    """Per-member predictions on one frame (eV, eV/Å, eV/Å³ in ASE's Voigt order)."""

    energies: np.ndarray  # (n_models,)
    forces: np.ndarray  # (n_models, n_atoms, 3)
    stresses: np.ndarray | None = None  # (n_models, 6)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_models(self) -> int:
        return int(self.forces.shape[0])

    @property
    def energy(self) -> float:
        """Committee mean energy (eV)."""
        return float(np.mean(self.energies))

    @property
    def mean_forces(self) -> np.ndarray:
        """Committee mean forces (eV/Å)."""
        return self.forces.mean(axis=0)

    @property
    def stress(self) -> np.ndarray | None:
        """Committee mean stress (eV/Å³, Voigt)."""
        return None if self.stresses is None else self.stresses.mean(axis=0)

    @property
    def atomic_force_spread(self) -> np.ndarray:
        """Per-atom force spread (eV/Å)."""
        return force_spread(self.forces)

    def uncertainty(self) -> FrameUncertainty:
        spread = self.atomic_force_spread
        natoms = max(self.forces.shape[1], 1)
        return FrameUncertainty(
            max_force_spread=float(spread.max()) if spread.size else 0.0,
            mean_force_spread=float(spread.mean()) if spread.size else 0.0,
            energy_spread_per_atom=float(np.std(self.energies)) / natoms,
        )


def _first(results: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if results.get(key) is not None:
            return results[key]
    return None


def _stress_voigt(stress: Any) -> np.ndarray:
    s = np.asarray(stress, dtype=float)
    if s.shape == (3, 3):
        s = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    return s


def _evaluate(calc: Calculator, atoms: Atoms, props: list[str]) -> dict[str, Any]:
    """Run ``calc`` on ``atoms`` telling it what changed since its last call (keeps neighbour lists alive)."""
    changes = all_changes if calc.atoms is None else calc.check_state(atoms)
    missing = [p for p in props if p not in calc.results]
    if changes or missing:
        calc.calculate(atoms.copy(), properties=props, system_changes=changes or all_changes)
    return calc.results


def committee_predict(atoms: Atoms, committee: Committee, *, stress: bool = False) -> CommitteePrediction:
    """Evaluate a committee on one frame.

    Parameters
    ----------
    atoms
        The frame (its own calculator is left untouched).
    committee
        A sequence of member calculators, or one calculator (with per-member results or a single model).
    stress
        Also compute the stress (eV/Å³); needs a 3D periodic cell.

    Returns
    -------
    CommitteePrediction
    """
    want_stress = stress and atoms.cell.rank == 3 and all(atoms.pbc)
    props = ["energy", "forces"] + (["stress"] if want_stress else [])
    if isinstance(committee, Calculator):
        res = _evaluate(committee, atoms, props)
        forces = _first(res, MEMBER_FORCES_KEYS)
        if forces is None:
            forces = np.asarray(res["forces"], dtype=float)[None]
            energies = np.array([float(res["energy"])])
        else:
            forces = np.asarray(forces, dtype=float)
            energies = _first(res, MEMBER_ENERGY_KEYS)
            energies = (np.full(forces.shape[0], float(res["energy"])) if energies is None
                        else np.asarray(energies, dtype=float).ravel())
        stresses = None
        if want_stress:
            member = _first(res, MEMBER_STRESS_KEYS)
            if member is not None:
                stresses = np.array([_stress_voigt(s) for s in member])
            elif res.get("stress") is not None:
                stresses = np.repeat(_stress_voigt(res["stress"])[None], forces.shape[0], axis=0)
        return CommitteePrediction(energies=energies, forces=forces, stresses=stresses)
    members = list(committee)
    if not members:
        raise ConfigError("an empty committee was given: pass at least one ASE calculator")
    energies, forces, stresses = [], [], []
    for calc in members:
        res = _evaluate(calc, atoms, props)
        energies.append(float(res["energy"]))
        forces.append(np.asarray(res["forces"], dtype=float))
        if want_stress:
            stresses.append(_stress_voigt(res["stress"]))
    return CommitteePrediction(
        energies=np.array(energies), forces=np.array(forces), stresses=np.array(stresses) if want_stress else None
    )


def score_frames(frames: Sequence[Atoms], committee: Committee) -> list[FrameUncertainty]:
    """Uncertainty of each frame of any trajectory under a committee (e.g. frames sampled with one model)."""
    return [committee_predict(atoms, committee).uncertainty() for atoms in frames]


class CommitteeMeanCalculator(Calculator):
    """ASE calculator driving MD with a committee's mean, and recording its spread.

    Results: ``energy``, ``free_energy`` (eV), ``forces`` (eV/Å), ``stress`` (eV/Å³, when every member gives it)
    are committee means; ``forces_committee`` (n_models, n_atoms, 3), ``energies_committee`` (eV),
    ``forces_spread`` (per atom, eV/Å), ``max_forces_spread``, ``mean_forces_spread`` (eV/Å) and
    ``energy_spread_per_atom`` (eV/atom).

    Parameters
    ----------
    committee
        Member calculators, or one calculator with per-member results (see the module docstring).
    """

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, committee: Committee, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.committee = committee

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        pred = committee_predict(self.atoms, self.committee, stress="stress" in properties)
        unc = pred.uncertainty()
        self.results = {
            "energy": pred.energy,
            "free_energy": pred.energy,
            "forces": pred.mean_forces,
            "forces_committee": pred.forces,
            "energies_committee": pred.energies,
            "forces_spread": pred.atomic_force_spread,
            "max_forces_spread": unc.max_force_spread,
            "mean_forces_spread": unc.mean_force_spread,
            "energy_spread_per_atom": unc.energy_spread_per_atom,
        }
        if pred.stress is not None:
            self.results["stress"] = pred.stress

    def last_uncertainty(self) -> FrameUncertainty:
        """Uncertainty of the last evaluated frame."""
        return FrameUncertainty(
            float(self.results["max_forces_spread"]),
            float(self.results["mean_forces_spread"]),
            float(self.results["energy_spread_per_atom"]),
        )


# -- committees that cross job boundaries: built from an importable factory ------------------------------------


@dataclass
class CalculatorFactory(MSONable):
    """How to build a committee (or a single calculator) inside a job: ``"module:callable"`` plus kwargs.

    Calculators cannot be serialised between jobs; this small description can.  The callable returns an ASE
    calculator or a list of them.

    Parameters
    ----------
    factory
        Import path ``"package.module:function"``.
    kwargs
        Keyword arguments of the callable (JSON-serialisable).

    Examples
    --------
    ``CalculatorFactory("mlipflow.sampling.uncertainty:mace_committee", {"model_paths": ["a.model", "b.model"]})``
    """

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Committee:
        module_name, _, attr = self.factory.partition(":")
        if not module_name or not attr:
            raise ConfigError(f"calculator factory {self.factory!r} must look like 'package.module:function'")
        try:
            fn: Callable[..., Committee] = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import calculator factory {self.factory!r}: {exc}") from exc
        return fn(**self.kwargs)

    # monty's MSONable merges an attribute named ``kwargs`` into the top level of ``as_dict``, which
    # ``from_dict`` then cannot take back: serialise the two fields explicitly
    def as_dict(self) -> dict[str, Any]:
        return {"@module": type(self).__module__, "@class": type(self).__name__, "factory": self.factory,
                "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CalculatorFactory:
        return cls(factory=d["factory"], kwargs=d.get("kwargs") or {})


def mace_committee(model_paths: Sequence[str], device: str = "cpu", default_dtype: str = "float64",
                   head: str | None = None) -> Calculator:
    """mace-torch's ``MACECalculator`` over one or several local ``.model`` files (a committee when several).

    Parameters
    ----------
    model_paths
        Local model files (nothing is downloaded).
    device
        ``cpu`` or ``cuda``.
    default_dtype
        ``float64`` or ``float32``.
    head
        Head of a multi-head model.
    """
    from mace.calculators import MACECalculator

    kwargs: dict[str, Any] = {"device": device, "default_dtype": default_dtype}
    if head is not None:
        kwargs["head"] = head
    return MACECalculator(model_paths=[str(p) for p in model_paths], **kwargs)


def toy_lj_committee(n_models: int = 3, sigma: float = 2.7, epsilon: float = 0.05, rc: float = 6.0,
                     perturbation: float = 0.03, seed: int = 0) -> list[Calculator]:
    """A committee of Lennard-Jones calculators with slightly perturbed parameters (for tests and demos).

    Parameters
    ----------
    n_models
        Number of members.
    sigma
        LJ length (Å).
    epsilon
        LJ well depth (eV).
    rc
        Cutoff (Å).
    perturbation
        Relative standard deviation of the members' sigma and epsilon.
    seed
        Seed of the perturbations.
    """
    from ase.calculators.lj import LennardJones

    rng = np.random.default_rng(seed)
    members = []
    for _ in range(n_models):
        s, e = 1.0 + perturbation * rng.standard_normal(2)
        members.append(LennardJones(sigma=sigma * s, epsilon=epsilon * e, rc=rc, smooth=True))
    return members
