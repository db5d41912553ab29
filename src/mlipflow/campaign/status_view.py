"""``mlipflow status`` as text that fits the terminal (80 columns and up), as plain text in a pipe, or as JSON.

Tables hold only short cells (numbers, states); long text (ids, the reasons of decisions, errors) is printed
under the table, wrapped to the width.  When the output is not a terminal the tables have no box-drawing
characters.  :func:`status_document` is what ``--json`` prints: every field of the stored campaign document
(the spec, the iteration records, whatever later stages add, such as ``benchmark``) with the computed status
(``state``, ``iteration``, ``stage``, ``labels``, ``jobs``, ``errors``, ``next``, ...) on top.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mlipflow.storage import Stores


def status_document(stores: Stores, name: str) -> dict[str, Any]:
    """The stored campaign document with :func:`~mlipflow.campaign.status.campaign_status` merged over it.

    JSON-safe: dates become ISO strings, other non-JSON values their ``str``.
    """
    from mlipflow.campaign.status import campaign_status

    doc = stores.campaigns.find_one({"_id": name}) or {}
    merged = {k: v for k, v in doc.items() if k != "_id"}
    merged.update(campaign_status(stores, name))
    return json.loads(json.dumps(merged, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "as_dict"):
        return value.as_dict()
    return str(value)


def _table(console: Console, title: str, columns: list[tuple[str, str]]) -> Table:
    """A table with a box on a terminal, plain aligned columns elsewhere (``(header, justify)`` per column)."""
    terminal = console.is_terminal
    console.print(Text(title, style="bold" if terminal else ""), highlight=False)  # not padded to the table
    table = Table(box=box.SIMPLE_HEAD if terminal else None, show_edge=False, pad_edge=False, padding=(0, 1))
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    return table


def _ratio(counts: dict[str, Any], key: str) -> str:
    value = counts.get(key + "_ratio")
    return "-" if value is None else f"{float(value):.2f}"


def _wrap(text: str, width: int, indent: int = 0) -> list[str]:
    """``text`` wrapped to ``width`` columns, continuation lines indented by ``indent`` + 2 spaces.

    A line never exceeds ``width`` bytes either (``awk 'length > 80'`` counts bytes: Å is two).
    """
    width = max(20, width)
    for w in range(width, 10, -1):
        lines = textwrap.wrap(text, w, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2),
                              break_on_hyphens=False) or [""]
        if all(len(line.encode()) <= width for line in lines):
            return lines
    return lines


def _line(console: Console, text: str, indent: int = 0) -> None:
    """Print ``text`` wrapped to the console width (see :func:`_wrap`)."""
    for line in _wrap(text, console.width, indent):
        console.print(Text(line), soft_wrap=True, highlight=False, markup=False)


def print_status(console: Console, st: dict[str, Any]) -> None:
    """Print one campaign's status (a :func:`~mlipflow.campaign.status.campaign_status` document)."""
    console.print(Text(f"campaign {st['name']}: {st['state']}", style="bold"), highlight=False)
    iterations = st.get("iterations") or []
    if iterations:
        table = _table(console, "iterations", [("it", "right"), ("accurate", "right"), ("candidate", "right"),
                                               ("failed", "right"), ("picked", "right"), ("decision", "left")])
        for it in iterations:
            counts = it.get("counts") or {}
            table.add_row(str(it.get("iteration")), _ratio(counts, "accurate"), _ratio(counts, "candidate"),
                          _ratio(counts, "failed"), str(it.get("picked", "")),
                          str((it.get("decision") or {}).get("decision", "")))
        console.print(table)
        for it in iterations:
            decision = it.get("decision") or {}
            _line(console, f"iteration {it.get('iteration')}: committee {it.get('committee')}, dataset "
                           f"{it.get('dataset')}")
            if decision.get("reason"):
                _line(console, f"{decision.get('decision')}: {decision['reason']}", indent=2)
    if st.get("by_family"):
        fam = _table(console, "latest exploration by structure family",
                     [("family", "left"), ("frames", "right"), ("accurate", "right"), ("candidate", "right"),
                      ("failed", "right")])
        for family, c in sorted(st["by_family"].items()):
            fam.add_row(family, str(int(c.get("n", 0))), _ratio(c, "accurate"), _ratio(c, "candidate"),
                        _ratio(c, "failed"))
        console.print(fam)
        for family, temps in sorted((st.get("by_temperature") or {}).items()):
            if temps:
                text = ", ".join(f"{t} {float(r.get('accurate_ratio', 0)):.2f}" for t, r in temps.items())
                _line(console, f"accurate ratio of {family} by temperature: {text}")
    _line(console, f"last finished step: {st.get('stage') or 'none'} (iteration {st.get('iteration')})")
    labels = st.get("labels") or {}
    _line(console, "labels: " + ", ".join(f"{k} {labels.get(k, 0)}" for k in
                                          ("labeled", "running", "pending", "failed", "filtered")))
    if st.get("jobs"):
        _line(console, "jobs on the LaunchPad: " + ", ".join(f"{k} {v}" for k, v in sorted(st["jobs"].items())))
    for err in st.get("errors") or []:
        if "frame" in err:
            _line(console, f"error: frame {err['frame']} (iteration {err.get('iteration')}): {err.get('reason')}")
        else:
            _line(console, f"error: job {err.get('job')} (firework {err.get('fw_id')}) failed")
    _line(console, f"next: {st.get('next')}")
