"""Decision curves (net benefit against threshold probability) rendered to PNG bytes.

Like ``figures.py`` it builds a ``matplotlib.figure.Figure`` directly, never through
``pyplot``, so no global backend is switched and no figure can leak. The curves come from
``classification.decision_curve.decision_curve``; every curve given must share its
thresholds (the same grid, the same patients).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from medsight.evaluate.report.figures import FIGSIZE_IN, _png_bytes


def decision_curve_figure(
    curves: Mapping[str, Mapping[str, Any]],
    max_threshold: float | None = None,
    title: str = "Decision curve",
) -> bytes:
    """Net benefit of each score, of treating everyone and of treating no one.

    The y axis runs from a little below 0 to a little above the prevalence (the most any
    strategy can gain), so the negative tail of "treat all" does not squash the curves.

    Args:
        curves: ``{name: decision_curve(...) dict}``; all with the same thresholds and
            patients. A curve with ``ci`` gets a shaded interval band.
        max_threshold: Right end of the x axis (default: the largest threshold).
        title: Figure title.

    Returns:
        The figure as PNG bytes.

    Raises:
        ValueError: If ``curves`` is empty or the curves' thresholds differ.
    """
    if not curves:
        raise ValueError("no decision curve to draw")
    first = next(iter(curves.values()))
    thresholds = np.asarray(first["thresholds"], dtype=np.float64)
    for name, curve in curves.items():
        if not np.array_equal(np.asarray(curve["thresholds"], dtype=np.float64), thresholds):
            raise ValueError(f"decision curve {name!r} uses other thresholds than the first")
    prevalence = float(first["prevalence"])
    fig = Figure(figsize=(FIGSIZE_IN[0] * 1.3, FIGSIZE_IN[1]))
    ax = fig.add_subplot()
    for name, curve in curves.items():
        (line,) = ax.plot(thresholds, curve["net_benefit"], linewidth=1.8, label=str(name))
        ci = curve.get("ci")
        if ci:
            low = np.array([np.nan if v is None else v for v in ci["low"]], dtype=np.float64)
            high = np.array([np.nan if v is None else v for v in ci["high"]], dtype=np.float64)
            ax.fill_between(thresholds, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.plot(thresholds, first["treat_all"], color="grey", linewidth=1.2, label="treat all")
    ax.plot(
        thresholds,
        first["treat_none"],
        color="black",
        linestyle="--",
        linewidth=1,
        label="treat none",
    )
    top = max(prevalence, 1e-3)
    ax.set_ylim(-0.25 * top, 1.1 * top)
    ax.set_xlim(float(thresholds[0]), float(max_threshold or thresholds[-1]))
    ax.set_xlabel("Threshold probability (act when risk >= threshold)")
    ax.set_ylabel("Net benefit")
    ax.set_title(f"{title} (prevalence {prevalence:.3f})")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png_bytes(fig)
