"""`mlipflow status` text: within the width (in bytes too), plain in a pipe, boxed on a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from mlipflow.campaign.status_view import _wrap, print_status

REASON = ("grain_boundary_sigma5_210 at 1200 K: accurate ratio 0.000 < 0.9; test force RMSE 212.4 meV/Å > "
          "target 50.0 meV/Å; bulk_strained at 300 K: accurate ratio 0.410 < 0.9")
COUNTS = {"n": 40.0, "accurate_ratio": 0.1, "candidate_ratio": 0.85, "failed_ratio": 0.05}
STATUS = {
    "name": "li2o-gb", "state": "running", "iteration": 2, "stage": "train",
    "labels": {"labeled": 41, "failed": 1}, "jobs": {"COMPLETED": 40, "RUNNING": 1},
    "by_family": {"grain_boundary_sigma5_210": COUNTS, "bulk_strained": COUNTS},
    "by_temperature": {"grain_boundary_sigma5_210": {"300 K": COUNTS, "900 K": COUNTS, "1200 K": COUNTS}},
    "errors": [{"frame": "ab" * 32, "iteration": 1, "reason": "largest force 67.4 eV/Å exceeds max_force=50.0"}],
    "iterations": [{"iteration": k, "committee": f"li2o-gb-committee-{'f' * 12}", "dataset": f"li2o-gb-{'e' * 12}",
                    "counts": COUNTS, "picked": 8, "decision": {"decision": "continue", "reason": REASON}}
                   for k in (1, 2)],
    "next": "running in pid 4242; next: explore (iteration 3)",
}


def _render(terminal: bool, width: int = 80) -> str:
    out = io.StringIO()
    print_status(Console(file=out, width=width, force_terminal=terminal, color_system=None), STATUS)
    return out.getvalue()


def test_status_fits_80_columns_and_is_plain_in_a_pipe():
    text = _render(terminal=False)
    assert max(len(line.encode()) for line in text.splitlines()) <= 80  # bytes: what `awk length` counts
    assert "\x1b[" not in text and not set("┃━│─┏") & set(text)
    assert "target 50.0 meV/Å" in text.replace("\n    ", " ")  # the reason is whole, wrapped under the table
    for needle in ("campaign li2o-gb: running", "continue", "accurate ratio of grain_boundary_sigma5_210 by "
                   "temperature", "labels: labeled 41", "error: frame", "next: running in pid 4242"):
        assert needle in text.replace("\n  ", " "), needle


def test_status_on_a_terminal_has_boxed_tables_within_the_width():
    text = _render(terminal=True, width=80)
    assert "─" in text or "━" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_wrap_counts_bytes():
    lines = _wrap("Å" * 100, 80)
    assert all(len(line.encode()) <= 80 for line in lines) and "".join(lines).replace(" ", "") == "Å" * 100
