"""Labeling: reference labels for frames, each computed once (the frames collection is the ledger).

* :class:`Labeler` (base), :class:`SurrogateLabeler` (any ASE calculator), :class:`VaspLabeler`
  (atomate2 VASP static, label-consistency-safe custodian profile), :class:`Cp2kLabeler` (atomate2 CP2K input
  set and custodian run);
* :class:`LabelLedger`: register / claim / settle frames atomically;
* :class:`SanityFilter`: NaN, missing stress, max force, energy-per-atom outliers per family;
* :func:`label_structures` (batch runner) and :class:`LabelMaker` (jobflow Maker).

The DFT labelers are imported lazily (``mlipflow.labeling.vasp`` / ``.cp2k``) because atomate2's VASP and
CP2K modules are slow to import.

Names are loaded on first use (see ``mlipflow._lazy``).
"""

from __future__ import annotations

from mlipflow._lazy import lazy_exports

_EXPORTS = {
    "Labeler": "mlipflow.labeling.base",
    "LabelResult": "mlipflow.labeling.base",
    "FamilyEnergyStats": "mlipflow.labeling.filters",
    "SanityFilter": "mlipflow.labeling.filters",
    "LabelMaker": "mlipflow.labeling.jobs",
    "LabelSummary": "mlipflow.labeling.schemas",
    "label_batch": "mlipflow.labeling.jobs",
    "label_structures": "mlipflow.labeling.jobs",
    "LabelLedger": "mlipflow.labeling.ledger",
    "provenance_of": "mlipflow.labeling.ledger",
    "SurrogateLabeler": "mlipflow.labeling.surrogate",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
