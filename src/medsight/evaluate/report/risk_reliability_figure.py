"""Reliability diagram of a binary risk score, before and after calibration, as PNG bytes.

The classifier diagram (``reliability_figure``) bins the top-class confidence; a risk model
is read by the probability of the event itself, so here risks fall into the same
equal-width bins ``calibration.risk_calibration_error`` uses, and each bin's observed event
rate is drawn against its mean predicted risk. With a rare outcome most cases sit in the
first bins, so the bottom panel shows how many cases each bin holds (log scale).
Built with ``matplotlib.figure.Figure`` directly, never through ``pyplot``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from medsight.evaluate.classification.calibration import DEFAULT_BINS, risk_calibration_error
from medsight.evaluate.report.figures import FIGSIZE_IN, _png_bytes


def risk_bins(
    y_true: np.ndarray, risk: np.ndarray, n_bins: int = DEFAULT_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width risk bin: case count, mean predicted risk, observed event rate.

    Args:
        y_true: 0/1 outcome per case.
        risk: Predicted event probability per case, in [0, 1].
        n_bins: Number of equal-width bins on [0, 1] (a risk of 0 goes to the first).

    Returns:
        ``(count, mean_risk, event_rate)``, each of shape ``(n_bins,)``; NaN in empty bins.
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(risk, dtype=np.float64).ravel()
    index = np.clip(np.ceil(p * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_risk = np.bincount(index, weights=p, minlength=n_bins) / count
        rate = np.bincount(index, weights=y, minlength=n_bins) / count
    return count, mean_risk, rate


def risk_reliability_figure(
    y_true: np.ndarray,
    risks: Mapping[str, np.ndarray],
    n_bins: int = DEFAULT_BINS,
    title: str = "Reliability",
) -> bytes:
    """Observed event rate against mean predicted risk per bin, one line per risk version.

    Args:
        y_true: 0/1 outcome per case.
        risks: ``{label: risk per case}``, e.g. ``{"as trained": p, "calibrated": q}``; each
            label gets its ECE (``risk_calibration_error``) in the legend.
        n_bins: Number of equal-width risk bins.
        title: Figure title.

    Returns:
        The figure as PNG bytes.

    Raises:
        ValueError: If ``risks`` is empty or a risk array does not match ``y_true``.
    """
    if not risks:
        raise ValueError("no risk to draw")
    fig = Figure(figsize=(FIGSIZE_IN[0], FIGSIZE_IN[1] * 1.25))
    ax_rel, ax_count = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    centres = (np.arange(n_bins) + 0.5) / n_bins
    width = 1.0 / n_bins / (len(risks) + 1)
    for k, (label, risk) in enumerate(risks.items()):
        ece = risk_calibration_error(y_true, risk, n_bins)
        count, mean_risk, rate = risk_bins(y_true, risk, n_bins)
        filled = count > 0
        ax_rel.plot(
            mean_risk[filled],
            rate[filled],
            marker="o",
            linewidth=1.5,
            label=f"{label} (ECE {ece:.3f})",
        )
        ax_count.bar(
            centres + (k - (len(risks) - 1) / 2) * width, count, width=width, label=str(label)
        )
    ax_rel.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="calibrated")
    ax_rel.set_xlim(0, 1)
    ax_rel.set_ylim(0, 1.02)
    ax_rel.set_ylabel("Observed event rate")
    ax_rel.set_title(title)
    ax_rel.legend(loc="upper left", fontsize=8)
    ax_count.set_yscale("log")
    ax_count.yaxis.set_major_formatter(ScalarFormatter())
    ax_count.yaxis.set_minor_formatter(NullFormatter())
    ax_count.set_xlabel("Predicted risk (bin mean)")
    ax_count.set_ylabel("Cases")
    for ax in (ax_rel, ax_count):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png_bytes(fig)
