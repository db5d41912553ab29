"""Small matplotlib helpers: headless figures and PNGs as base64 for the self-contained HTML report."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: benchmarks run on workers without a display

import matplotlib.pyplot as plt


def new_figure(n_panels: int = 1, *, width: float = 4.5, height: float = 3.5) -> tuple[Any, list[Any]]:
    """A figure with ``n_panels`` axes in a row; returns (figure, list of axes)."""
    fig, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, height), squeeze=False)
    return fig, list(axes[0])


def figure_to_base64(fig: Any, dpi: int = 90) -> str:
    """PNG of ``fig`` encoded as base64 (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")
