"""Headline metrics of a k-class classifier, as a JSON-serialisable dict.

Labels are integer class indices ``0..k-1`` in the order of ``class_names``; ``probs`` holds
one row of class probabilities per case (shape ``(n_cases, k)``). The predicted class is the
row's argmax. Every number in the result is a plain Python ``int``/``float`` (or ``None`` where
a metric is undefined), so the dict can be written with ``json.dump`` as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)


def _validated(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    k = len(class_names)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D (one label per case), got shape {y.shape}")
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (cases, classes), got shape {p.shape}")
    if p.shape[0] != y.shape[0]:
        raise ValueError(
            f"y_true has {y.shape[0]} cases but probs has {p.shape[0]} rows; they must match"
        )
    if p.shape[1] != k:
        raise ValueError(f"probs has {p.shape[1]} columns but there are {k} class names")
    if k < 2:
        raise ValueError(f"need at least two classes, got {k}")
    if len(set(class_names)) != k:
        raise ValueError(f"class names must be unique, got {class_names}")
    if y.shape[0] == 0:
        raise ValueError("no cases: y_true and probs are empty")
    if not np.all(np.isfinite(p)):
        raise ValueError("probs contains NaN or infinite values")
    if not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError("y_true must hold integer class indices")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"y_true holds labels outside 0..{k - 1}: {sorted(set(y.tolist()))}")
    return y, p


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str]
) -> dict[str, Any]:
    """Accuracy, one-vs-rest ROC-AUC, per-class precision/recall/F1 and the confusion matrix.

    The macro AUC is the unweighted mean of the per-class one-vs-rest AUCs, which is what
    ``sklearn.metrics.roc_auc_score(..., multi_class="ovr", average="macro")`` computes; it is
    computed class by class so that it is also defined for two classes and for scores whose
    rows do not sum exactly to one.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, len(class_names))``.
        class_names: Name of each class, in label order.

    Returns:
        A JSON-serialisable dict with keys ``n_cases``, ``class_names``, ``accuracy``,
        ``macro_auc`` (``None`` if any class is absent from ``y_true``, or is the only one
        present, since its AUC is then undefined), ``per_class`` (``{name: {"precision",
        "recall", "f1", "auc", "support"}}``, ``auc`` ``None`` where undefined) and
        ``confusion_matrix`` (list of lists, rows = true class, columns = predicted class).

    Raises:
        ValueError: If the shapes of ``y_true``, ``probs`` and ``class_names`` disagree,
            ``probs`` is not finite, a label is not an index into ``class_names`` or two
            classes share a name; the metrics would otherwise be silently wrong.
    """
    y, p = _validated(y_true, probs, class_names)
    k = len(class_names)
    labels = list(range(k))
    y_pred = p.argmax(axis=1)

    precision, recall, f1, support = precision_recall_fscore_support(
        y, y_pred, labels=labels, zero_division=0
    )
    aucs: list[float | None] = []
    for c in labels:
        is_c = y == c
        # AUC needs both positives and negatives; otherwise it is undefined, not 0 or 1.
        aucs.append(float(roc_auc_score(is_c, p[:, c])) if 0 < is_c.sum() < len(y) else None)
    defined = [a for a in aucs if a is not None]
    macro_auc = float(np.mean(defined)) if len(defined) == k else None

    per_class = {
        name: {
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "auc": aucs[c],
            "support": int(support[c]),
        }
        for c, name in enumerate(class_names)
    }
    cm = confusion_matrix(y, y_pred, labels=labels)
    return {
        "n_cases": int(len(y)),
        "class_names": [str(name) for name in class_names],
        "accuracy": float(accuracy_score(y, y_pred)),
        "macro_auc": macro_auc,
        "per_class": per_class,
        "confusion_matrix": [[int(v) for v in row] for row in cm],
    }
