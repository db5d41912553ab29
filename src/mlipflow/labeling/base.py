"""The labeler interface: one structure in, one reference label out.

A :class:`Labeler` knows *how* to label (a DFT code through atomate2 + custodian, or any ASE calculator);
the ledger (:mod:`mlipflow.labeling.ledger`) knows *whether* a frame still needs a label, and the batch
runner (:func:`mlipflow.labeling.jobs.label_structures`) ties them together.  Labelers are dataclasses
(MSONable, so that they serialise as fields of a :class:`~mlipflow.labeling.jobs.LabelMaker`).

Units: energy in eV, forces in eV/Å, stress in eV/Å³ with ASE's sign convention (positive = tensile),
magnetic moments in Bohr magnetons.
"""

from __future__ import annotations

import abc
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from monty.json import MSONable
from pymatgen.core import Structure

from mlipflow.data import LabelerInfo

logger = logging.getLogger(__name__)


@dataclass
class LabelResult:
    """The label of one structure.

    Parameters
    ----------
    energy
        Total energy (eV).  For DFT codes with smearing this is the free energy, the energy whose
        derivative the forces are.
    forces
        Forces, shape ``(natoms, 3)`` (eV/Å), in the order of the input structure's sites.
    stress
        Stress, 3x3 (eV/Å³, ASE sign convention: positive = tensile), or ``None`` if not computed.
    magmoms
        Site magnetic moments (μB) or ``None``.
    corrections
        Corrections applied while computing the label (e.g. custodian's convergence-strategy changes),
        recorded in the frame's provenance.
    details
        Small free-form facts about the calculation (code version, SCF steps, the U values actually used...).
    """

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None = None
    magmoms: list[float] | None = None
    corrections: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


#: set to 1 where labels are computed elsewhere (a submit host without CP2K/VASP): preflight only warns
REMOTE_LABELER_ENV = "MLIPFLOW_REMOTE_LABELER"


def preflight_labeler(labeler: Labeler, elements: Iterable[str] = ()) -> None:
    """Run ``labeler.preflight`` before a campaign queues jobs (a warning only with ``MLIPFLOW_REMOTE_LABELER=1``).

    Raises
    ------
    ConfigError
        When the labeler cannot run here, naming what to install or set.
    """
    from mlipflow.errors import ConfigError

    try:
        labeler.preflight(elements)
    except ConfigError as exc:
        if os.environ.get(REMOTE_LABELER_ENV) != "1":
            raise
        logger.warning("%s (%s=1: left to the workers)", exc, REMOTE_LABELER_ENV)


class Labeler(MSONable, abc.ABC):
    """Something that turns a structure into reference energy, forces and stress.

    Subclasses are dataclasses that define :attr:`info` and :meth:`label_one`.  ``info.settings`` must hold
    every setting that changes the physics of the label: it is part of each frame's content hash, so two
    labelers with different physics never share a label.
    """

    #: whether this labeler computes the stress (sanity filters may require it)
    computes_stress: bool = True
    #: whether label_one needs its own working directory (DFT codes write files)
    needs_workdir: bool = False
    #: whether labels depend on the total charge: frames then carry it (``Structure.charge``, in the frame id)
    uses_charge: bool = False

    @property
    @abc.abstractmethod
    def info(self) -> LabelerInfo:
        """Name, kind (``dft`` or ``surrogate``), version and physics settings of this labeler."""

    @abc.abstractmethod
    def label_one(self, structure: Structure, workdir: Path | None = None) -> LabelResult:
        """Compute the label of one structure.

        Parameters
        ----------
        structure
            The structure to label (Å).
        workdir
            An empty directory the labeler may write into (given when :attr:`needs_workdir`).

        Returns
        -------
        LabelResult
            The label.

        Raises
        ------
        LabelingError
            If the calculation failed or did not converge (the reason is recorded with the frame).
        """

    def setup(self) -> None:
        """Prepare expensive resources once per batch (load a model, check an executable)."""

    def preflight(self, elements: Iterable[str] = ()) -> None:
        """Check, before any job is queued, that this labeler can run here (executables, data files).

        Parameters
        ----------
        elements
            Elements the campaign will label (pseudopotential files are checked for them).

        Raises
        ------
        ConfigError
            Naming what is missing and what to install or set.
        """

    def ase_calculator(self) -> Any:
        """The labeler as an ASE calculator, to drive reference MD with it (surrogates; DFT goes through atomate2).

        Raises
        ------
        LabelingError
            If this labeler has no in-process calculator.
        """
        from mlipflow.errors import LabelingError

        raise LabelingError(
            f"labeler {self.info.describe()} has no in-process ASE calculator: its reference MD goes through "
            "atomate2's MD Makers (mlipflow.sampling.aimd), not through reference_md"
        )


@dataclass
class LabelerCalculator(MSONable):
    """Builds a labeler's ASE calculator in a worker process (``build()``), for MD with the reference itself."""

    labeler: Labeler

    def build(self) -> Any:
        self.labeler.setup()
        return self.labeler.ase_calculator()
