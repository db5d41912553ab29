"""Where benchmark results live: one small document per measurement in the ``benchmarks`` collection.

A document names its *subject* (campaign, model or dataset name the report is made for), the *model* measured
(model id or baseline spec), the *kind* of measurement (``errors``, ``rdf``, ``adf``, ``vdos``, ``diffusion``,
``arrhenius``, ``eos``, ``elastic``, ``phonon_dos``, ``energetics``, ``stability``, ``speed``), the *reference*
(the labeler's ``describe()`` string, e.g. ``cp2k-pbe 2023.1 (dft)`` or ``chgnet 0.4.2 (surrogate)``, or
``none``), a flat *summary* of headline numbers with units in the keys, the full *result* and PNG *plots*
(base64; small, a few tens of kB each).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monty.json import jsanitize

BENCHMARKS = "benchmarks"

KINDS = (
    "errors", "rdf", "adf", "vdos", "diffusion", "arrhenius", "conductivity", "eos", "elastic", "phonon_dos",
    "energetics", "stability", "speed", "label_efficiency",
)


def save_result(
    stores: Any,
    *,
    subject: str,
    kind: str,
    model: str,
    reference: str,
    summary: dict[str, Any],
    result: Any = None,
    plots: dict[str, str] | None = None,
    note: str = "",
) -> Any:
    """Store one benchmark result; returns its id.

    Parameters
    ----------
    stores
        From :func:`mlipflow.storage.get_stores`.
    subject
        Name the report is made for (campaign, model or dataset name).
    kind
        One of :data:`KINDS`.
    model
        What was measured (model id, ``chgnet``, ``reference`` for the reference method's own values...).
    reference
        Labeler of the reference values (``LabelerInfo.describe()``), or ``none``.
    summary
        Headline numbers, keys with units (``a_A``, ``B_GPa``, ``rmse_f_meV_A``...).
    result
        The full result (a pydantic model or dict).
    plots
        Title -> base64 PNG.
    note
        Free text (settings, caveats).
    """
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    doc = {
        "subject": subject, "kind": kind, "model": model, "reference": reference,
        "summary": jsanitize(summary, strict=False), "result": jsanitize(result, strict=False),
        "plots": plots or {}, "note": note, "created_at": datetime.now(UTC),
    }
    return stores.collection(BENCHMARKS).insert_one(doc).inserted_id


def load_results(stores: Any, subjects: list[str]) -> list[dict[str, Any]]:
    """Benchmark documents whose subject or model is one of ``subjects``, oldest first."""
    query = {"$or": [{"subject": {"$in": subjects}}, {"model": {"$in": subjects}}]}
    return list(stores.collection(BENCHMARKS).find(query).sort("created_at", 1))
