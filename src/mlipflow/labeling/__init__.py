"""Labeling: reference labels for frames, each computed once (the frames collection is the ledger).

* :class:`Labeler` (base), :class:`SurrogateLabeler` (any ASE calculator), :class:`VaspLabeler`
  (atomate2 VASP static, label-consistency-safe custodian profile), :class:`Cp2kLabeler` (atomate2 CP2K input
  set and custodian run);
* :class:`LabelLedger`: register / claim / settle frames atomically;
* :class:`SanityFilter`: NaN, missing stress, max force, energy-per-atom outliers per family;
* :func:`label_structures` (batch runner) and :class:`LabelMaker` (jobflow Maker).

The DFT labelers are imported lazily (``mlipflow.labeling.vasp`` / ``.cp2k``) because atomate2's VASP and
CP2K modules are slow to import.
"""

from mlipflow.labeling.base import Labeler, LabelResult
from mlipflow.labeling.filters import FamilyEnergyStats, SanityFilter
from mlipflow.labeling.jobs import LabelMaker, LabelSummary, label_batch, label_structures
from mlipflow.labeling.ledger import LabelLedger, provenance_of
from mlipflow.labeling.surrogate import SurrogateLabeler

__all__ = [
    "FamilyEnergyStats",
    "LabelLedger",
    "LabelMaker",
    "LabelResult",
    "LabelSummary",
    "Labeler",
    "SanityFilter",
    "SurrogateLabeler",
    "label_batch",
    "label_structures",
    "provenance_of",
]
