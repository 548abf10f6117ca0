"""Headline metrics of a k-class classifier, and the project's macro ROC-AUC.

`macro_auc` is the one macro AUC: the training loop stops on it (reading ``None`` as 0.5,
chance, because early stopping needs a number), and the cross-validation, MedMNIST and
evaluation tables report it. `classification_metrics` is the headline table: accuracy,
AUCs, per-class precision/recall/F1 and the confusion matrix. Every ROC-AUC in medsight is
``clinical_metrics.ranking_metrics`` (the weighted Mann-Whitney statistic, batched over
bootstrap case weights; here with every weight 1), so the point estimate and its bootstrap
CI come from one implementation; undefined is ``None``, never 0, 0.5 or 1.

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
)

from medsight.evaluate.classification.clinical_metrics import ranking_metrics
from medsight.evaluate.segmentation.case_arrays import checked_cases


def one_vs_rest_auc(y_true: np.ndarray, probs: np.ndarray) -> list[float | None]:
    """ROC-AUC of each class against the rest, from its own probability column.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, k)``.

    Returns:
        One AUC per class; ``None`` for a class that is absent or is the only one present
        (its AUC needs both positives and negatives and is undefined otherwise, not 0 or 1).
    """
    y = np.asarray(y_true)
    p = np.asarray(probs)
    unit = np.ones((1, len(y)))  # every case once: the bootstrap's weights at the point
    aucs: list[float | None] = []
    for c in range(p.shape[1]):
        is_c = y == c
        auc = float(ranking_metrics(is_c, p[:, c], unit)[0][0])
        aucs.append(auc if 0 < is_c.sum() < len(y) else None)
    return aucs


def macro_auc(y_true: np.ndarray, probs: np.ndarray) -> float | None:
    """One-vs-rest macro ROC-AUC: the unweighted mean of the per-class AUCs.

    With two classes it is the AUC of the second column (scikit-learn's binary convention):
    for probabilities (rows summing to one) the two classes' AUCs are the same number, and
    averaging two roundings of it would only move the last bits. It is what the training
    loop stops on (``val_auc``) and what every metrics table reports as ``macro_auc``.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, k)``, ``k >= 2``.

    Returns:
        The macro AUC, or ``None`` when a class is absent from ``y_true`` (or is the only
        one present): a class without cases has no AUC, and averaging the others would
        make the number mean different things on different data.
    """
    y = np.asarray(y_true)
    aucs = one_vs_rest_auc(y, probs)
    if any(a is None for a in aucs):
        return None
    if len(aucs) == 2:
        return aucs[1]
    return float(np.mean([a for a in aucs if a is not None]))


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str]
) -> dict[str, Any]:
    """Accuracy, one-vs-rest ROC-AUC, per-class precision/recall/F1 and the confusion matrix.

    The per-class AUCs are `one_vs_rest_auc`'s and the macro AUC is `macro_auc`'s (the mean
    of the per-class AUCs, which is what ``sklearn.metrics.roc_auc_score(...,
    multi_class="ovr", average="macro")`` computes; for two classes the positive column's).

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
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class names must be unique, got {list(class_names)}")
    y, p = checked_cases(y_true, probs, len(class_names))
    k = len(class_names)
    labels = list(range(k))
    y_pred = p.argmax(axis=1)

    precision, recall, f1, support = precision_recall_fscore_support(
        y, y_pred, labels=labels, zero_division=0
    )
    aucs = one_vs_rest_auc(y, p)

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
        "macro_auc": macro_auc(y, p),
        "per_class": per_class,
        "confusion_matrix": [[int(v) for v in row] for row in cm],
    }
