"""Reliability diagram (calibration plot) rendered to PNG bytes.

Kept apart from ``calibration.py`` so that code which only needs the numbers or
``TemperatureScaler`` (training, serving) does not import matplotlib. Like ``figures.py``
it builds a ``matplotlib.figure.Figure`` directly, never through ``pyplot``, so no global
backend is switched and no figure can leak.

Labels are integer class indices ``0..k-1``; ``probs`` has shape ``(n_cases, k)``.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from medsight.evaluate.classification.calibration import (
    DEFAULT_BINS,
    expected_calibration_error,
    reliability_bins,
)
from medsight.evaluate.report.figures import DPI, FIGSIZE_IN


def reliability_figure(
    y_true: np.ndarray,
    probs: np.ndarray,
    n_bins: int = DEFAULT_BINS,
    title: str = "Reliability diagram",
) -> bytes:
    """Accuracy against confidence per bin (top) and the number of cases per bin (bottom).

    Bars at the diagonal mean calibrated; bars below it, over-confident. The red part of
    each bar is the gap between the bin's accuracy and its mean confidence; the ECE is in
    the title.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, k)``.
        n_bins: Number of equal-width confidence bins.
        title: Figure title, before the ECE.

    Returns:
        The figure as PNG bytes.

    Raises:
        ValueError: If the inputs are inconsistent or ``n_bins`` is not a positive integer.
    """
    bins = reliability_bins(y_true, probs, n_bins)
    ece = expected_calibration_error(y_true, probs, n_bins)
    width = 1.0 / n_bins
    centres = np.array([(b["lower"] + b["upper"]) / 2 for b in bins])
    filled = np.array([b["count"] > 0 for b in bins])
    accuracy = np.array([b["accuracy"] if b["count"] else 0.0 for b in bins])
    confidence = np.array([b["confidence"] if b["count"] else 0.0 for b in bins])

    fig = Figure(figsize=(FIGSIZE_IN[0], FIGSIZE_IN[1] * 1.25))
    ax_rel, ax_count = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax_rel.bar(
        centres[filled],
        accuracy[filled],
        width=width,
        color="tab:blue",
        edgecolor="black",
        linewidth=0.6,
        label="accuracy",
    )
    gap_bottom = np.minimum(accuracy, confidence)[filled]
    gap_height = np.abs(confidence - accuracy)[filled]
    ax_rel.bar(
        centres[filled],
        gap_height,
        bottom=gap_bottom,
        width=width,
        color="tab:red",
        alpha=0.35,
        edgecolor="tab:red",
        linewidth=0.6,
        label="gap to confidence",
    )
    ax_rel.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="calibrated")
    ax_rel.set_xlim(0, 1)
    ax_rel.set_ylim(0, 1.02)
    ax_rel.set_ylabel("Accuracy")
    ax_rel.set_title(f"{title} (ECE {ece:.3f})")
    ax_rel.legend(loc="upper left", fontsize=8)
    counts = [b["count"] for b in bins]
    ax_count.bar(centres, counts, width=width, color="grey", edgecolor="black", linewidth=0.6)
    ax_count.set_xlabel("Confidence (top-class probability)")
    ax_count.set_ylabel("Cases")
    for ax in (ax_rel, ax_count):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
