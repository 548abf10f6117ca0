"""Report figures (ROC curves, confusion matrix, training curves) rendered to PNG bytes.

Figures are built with ``matplotlib.figure.Figure`` directly rather than through
``pyplot``: no global backend has to be switched (importing this module does not change
the backend of a user's notebook), no figure is registered in pyplot's global list, so
none can leak, and rendering is safe from worker threads. ``Figure.savefig`` renders PNG
with the Agg canvas.

Labels are integer class indices ``0..k-1`` in the order of ``class_names``; ``probs`` has
shape ``(n_cases, k)``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

FIGSIZE_IN = (5.0, 4.0)
DPI = 100


def _png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _labels_and_probs(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape != (len(y), len(class_names)):
        raise ValueError(
            f"probs shape {p.shape} does not match {len(y)} labels x {len(class_names)} classes"
        )
    return y, p


def _one_vs_rest_figure(
    y: np.ndarray,
    p: np.ndarray,
    class_names: list[str],
    curve: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, str]],
    score_name: str,
    axis_labels: tuple[str, str],
    title: str,
    legend_loc: Literal["lower right", "lower left"],
    chance: bool,
) -> bytes:
    """One curve per class (class vs rest); a class that cannot be scored is listed as n/a."""
    fig = Figure(figsize=FIGSIZE_IN)
    ax = fig.add_subplot()
    for c, name in enumerate(class_names):
        is_c = y == c
        if 0 < is_c.sum() < len(y):
            xs, ys, label = curve(is_c, p[:, c])
            ax.plot(xs, ys, linewidth=1.8, label=f"{name} ({label})")
        else:
            ax.plot([], [], linewidth=1.8, label=f"{name} ({score_name} n/a)")
    if chance:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    ax.legend(loc=legend_loc, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png_bytes(fig)


def roc_figure(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> bytes:
    """One-vs-rest ROC curve per class, with each class's AUC in the legend.

    A class that is absent from ``y_true`` (or is the only class present) has no ROC curve;
    it is listed in the legend as ``n/a`` instead of being dropped silently.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, len(class_names))``.
        class_names: Name of each class, in label order.

    Returns:
        The figure as PNG bytes.

    Raises:
        ValueError: If ``probs`` does not have one row per label and one column per class.
    """
    y, p = _labels_and_probs(y_true, probs, class_names)

    def roc(is_c: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        fpr, tpr, _ = roc_curve(is_c, score)
        return fpr, tpr, f"AUC {roc_auc_score(is_c, score):.3f}"

    return _one_vs_rest_figure(
        y,
        p,
        class_names,
        roc,
        "AUC",
        ("False positive rate", "True positive rate"),
        "ROC, one vs rest",
        "lower right",
        chance=True,
    )


def pr_figure(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> bytes:
    """One-vs-rest precision-recall curve per class, average precision in the legend."""
    y, p = _labels_and_probs(y_true, probs, class_names)

    def pr(is_c: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        precision, recall, _ = precision_recall_curve(is_c, score)
        ap = average_precision_score(is_c, score)
        return recall, precision, f"AP {ap:.3f}, prevalence {is_c.mean():.2f}"

    return _one_vs_rest_figure(
        y,
        p,
        class_names,
        pr,
        "AP",
        ("Recall (sensitivity)", "Precision (PPV)"),
        "Precision-recall, one vs rest",
        "lower left",
        chance=False,
    )


def confusion_figure(confusion: list[list[int]], class_names: list[str]) -> bytes:
    """Confusion matrix as a heatmap annotated with the count in each cell.

    Args:
        confusion: Square matrix of counts, rows = true class, columns = predicted class
            (the ``confusion_matrix`` entry of ``classification_metrics``).
        class_names: Name of each class, in label order.

    Returns:
        The figure as PNG bytes.

    Raises:
        ValueError: If ``confusion`` is not ``k x k`` for ``k = len(class_names)``.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion matrix shape {counts.shape} does not match {k} classes")
    fig = Figure(figsize=FIGSIZE_IN)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.locator = MaxNLocator(integer=True)
    colorbar.update_ticks()
    # White text on dark cells, black on light ones, so every count stays legible.
    threshold = counts.max() / 2 if counts.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if counts[i, j] > threshold else "black",
                fontsize=11,
            )
    ax.set_xticks(range(k), class_names, rotation=30, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title("Confusion matrix")
    fig.tight_layout()
    return _png_bytes(fig)


def _column(history: list[dict[str, Any]], key: str) -> list[float]:
    # A missing or None value (no validation split, undefined AUC) is plotted as a gap.
    values = []
    for row in history:
        value = row.get(key)
        values.append(math.nan if value is None else float(value))
    return values


def training_curves_figure(history: list[dict[str, Any]]) -> bytes:
    """Training and validation loss (top) and validation AUC (bottom) per epoch.

    Args:
        history: One dict per epoch with keys ``epoch``, ``train_loss``, ``val_loss`` and
            ``val_auc``; a missing or ``None`` value leaves a gap in its curve. An empty
            history gives a figure saying so.

    Returns:
        The figure as PNG bytes.
    """
    fig = Figure(figsize=FIGSIZE_IN)
    ax_loss, ax_auc = fig.subplots(2, 1, sharex=True)
    if not history:
        ax_loss.text(0.5, 0.5, "no training history", ha="center", va="center")
    else:
        epochs = _column(history, "epoch")
        ax_loss.plot(epochs, _column(history, "train_loss"), marker=".", label="train")
        ax_loss.plot(epochs, _column(history, "val_loss"), marker=".", label="validation")
        ax_loss.legend(fontsize=8)
        ax_auc.plot(epochs, _column(history, "val_auc"), marker=".", color="tab:green")
        ax_auc.set_ylim(0, 1.02)
    ax_loss.set_ylabel("Loss")
    ax_loss.set_title("Training curves")
    ax_auc.set_ylabel("Validation AUC")
    ax_auc.set_xlabel("Epoch")
    ax_auc.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_loss, ax_auc):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png_bytes(fig)
