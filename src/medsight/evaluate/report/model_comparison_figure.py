"""ROC and precision-recall curves of several scores of the same cases, overlaid, as PNG bytes.

"Did model A beat baseline B?" is read best with both curves on one axis: every score here
must belong to the same cases (same patients, same outcomes). AUROC and average precision in
the legend are ``clinical_metrics.ranking_metrics`` (the numbers the tables report). Built
with ``matplotlib.figure.Figure`` directly, never through ``pyplot``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from medsight.evaluate.classification.clinical_metrics import ranking_metrics
from medsight.evaluate.report.figures import FIGSIZE_IN, _png_bytes


def _checked(y_true: np.ndarray, scores: Mapping[str, np.ndarray]) -> np.ndarray:
    y = np.asarray(y_true).astype(bool).ravel()
    if not scores:
        raise ValueError("no score to draw")
    for name, score in scores.items():
        if np.asarray(score).shape != y.shape:
            raise ValueError(f"score {name!r} does not have one value per case")
    if y.all() or not y.any():
        raise ValueError("curves need cases with and without the event")
    return y


def roc_comparison_figure(
    y_true: np.ndarray, scores: Mapping[str, np.ndarray], title: str = "ROC, same patients"
) -> bytes:
    """One ROC curve per score, AUROC in the legend, with the chance diagonal.

    Args:
        y_true: 0/1 outcome per case.
        scores: ``{name: score per case}``, higher = more likely the event.
        title: Figure title.

    Returns:
        The figure as PNG bytes.

    Raises:
        ValueError: If ``scores`` is empty, a score has the wrong length, or one outcome
            is missing.
    """
    y = _checked(y_true, scores)
    fig = Figure(figsize=FIGSIZE_IN)
    ax = fig.add_subplot()
    ones = np.ones((1, y.size))
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(y, score)
        auc = float(ranking_metrics(y, np.asarray(score, dtype=np.float64), ones)[0][0])
        ax.plot(fpr, tpr, linewidth=1.6, label=f"{name} (AUROC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("False positive rate (1 - specificity)")
    ax.set_ylabel("Sensitivity")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png_bytes(fig)


def pr_comparison_figure(
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    title: str = "Precision-recall, same patients",
) -> bytes:
    """One precision-recall curve per score, average precision in the legend, prevalence line.

    Args: as ``roc_comparison_figure``.

    Returns:
        The figure as PNG bytes.
    """
    y = _checked(y_true, scores)
    fig = Figure(figsize=FIGSIZE_IN)
    ax = fig.add_subplot()
    ones = np.ones((1, y.size))
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(y, score)
        ap = float(ranking_metrics(y, np.asarray(score, dtype=np.float64), ones)[1][0])
        ax.plot(recall, precision, linewidth=1.6, label=f"{name} (AP {ap:.3f})")
    prevalence = float(y.mean())
    ax.axhline(prevalence, linestyle="--", color="grey", linewidth=1, label="prevalence")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Recall (sensitivity)")
    ax.set_ylabel("Precision (PPV)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png_bytes(fig)
