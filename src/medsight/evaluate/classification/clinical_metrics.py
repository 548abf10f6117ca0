"""Clinical metrics of a k-class classifier: one-vs-rest per class, macro means, overall.

Labels are integer class indices ``0..k-1`` in the order of ``class_names``; ``probs`` has
shape ``(n_cases, k)`` (softmax rows) and the predicted class is the row's argmax. For each
class ``c`` the task "c vs the rest" gives TP/FP/FN/TN counts, from which:

- sensitivity (recall) = TP / (TP + FN), specificity = TN / (TN + FP),
- ppv (precision) = TP / (TP + FP), npv = TN / (TN + FN),
- f1 = 2 TP / (2 TP + FP + FN),
- roc_auc: the one-vs-rest ROC-AUC of the class's probability column,
- pr_auc: average precision (scikit-learn's ``average_precision_score``, no interpolation).

``macro`` is the unweighted mean over classes; ``overall`` holds accuracy and balanced
accuracy (= macro sensitivity). A metric whose denominator is empty (no positives, no
predicted positives, a class absent) is undefined and reported as ``None``, never as 0 or 1;
a macro mean is undefined when any class's value is. This differs from scikit-learn on
purpose: scikit-learn's ``zero_division=0`` turns "the model never predicted this class" into
a precision of 0, and its ``balanced_accuracy_score`` silently averages only the classes
present, so its value would mean different things in different bootstrap resamples.

Why not call scikit-learn for every number: the bootstrap (``bootstrap.py``) evaluates
~30 metrics on 1000 resamples. A resample of patients is the original cases with integer
multiplicities, so every metric here is computed for a whole batch of case-weight vectors
``weights`` (shape ``(n_resamples, n_cases)``) at once with matrix products and cumulative
sums; with all weights 1 the values equal scikit-learn's (checked in the tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medsight.evaluate.segmentation.case_arrays import checked_cases

OVERALL_NAMES = ("accuracy", "balanced_accuracy")
RATE_NAMES = ("sensitivity", "specificity", "ppv", "npv", "f1")
RANKING_NAMES = ("roc_auc", "pr_auc")
PER_CLASS_NAMES = RATE_NAMES + RANKING_NAMES

MetricPath = tuple[str, ...]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with NaN (undefined) where the denominator is 0."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def rates_from_counts(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray
) -> dict[str, np.ndarray]:
    """Sensitivity, specificity, PPV, NPV and F1 from (possibly weighted) confusion counts.

    Args:
        tp: True positives; any shape, broadcast with the other counts.
        fp: False positives.
        fn: False negatives.
        tn: True negatives.

    Returns:
        ``{"sensitivity", "specificity", "ppv", "npv", "f1"}``, each a float array with NaN
        where its denominator is 0.
    """
    tp, fp, fn, tn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn, tn))
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def ranking_metrics(
    is_positive: np.ndarray, scores: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted ROC-AUC and average precision of one binary task, for many weight vectors.

    Cases are sorted by score once; tied scores form one threshold group, as in
    scikit-learn. ROC-AUC is the weighted Mann-Whitney statistic (ties count one half),
    which equals the area under the weighted ROC curve; average precision is
    ``sum_g (w_pos_g / W_pos) * precision_g`` over threshold groups ``g`` in decreasing
    score order, which is ``sklearn.metrics.average_precision_score``.

    Args:
        is_positive: Boolean truth of each case, shape ``(n_cases,)``.
        scores: Score of each case, higher = more likely positive, shape ``(n_cases,)``.
        weights: Non-negative case weights, shape ``(n_rows, n_cases)``.

    Returns:
        ``(roc_auc, average_precision)``, each of shape ``(n_rows,)``; ROC-AUC is NaN in a row
        without positive or without negative weight, average precision without positives.
    """
    truth = np.asarray(is_positive, dtype=bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores = np.asarray(scores, dtype=np.float64)[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    w = np.asarray(weights, dtype=np.float64)[:, order]
    pos_group = np.add.reduceat(w * truth[order], starts, axis=1)
    neg_group = np.add.reduceat(w * ~truth[order], starts, axis=1)
    n_pos = pos_group.sum(axis=1)
    n_neg = neg_group.sum(axis=1)
    # Groups run from the highest score down: negatives scored below group g are those in
    # later groups.
    neg_at_or_above = np.cumsum(neg_group, axis=1)
    neg_below = n_neg[:, None] - neg_at_or_above
    concordant = (pos_group * (neg_below + 0.5 * neg_group)).sum(axis=1)
    roc_auc = _ratio(concordant, n_pos * n_neg)
    tp = np.cumsum(pos_group, axis=1)
    precision = np.zeros_like(tp)
    np.divide(tp, tp + neg_at_or_above, out=precision, where=(tp + neg_at_or_above) > 0)
    average_precision = _ratio((pos_group * precision).sum(axis=1), n_pos)
    return roc_auc, average_precision


def weighted_confusion(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, weights: np.ndarray
) -> np.ndarray:
    """Confusion matrices for many case-weight vectors at once.

    Args:
        y_true: True class of each case, shape ``(n_cases,)``.
        y_pred: Predicted class of each case, shape ``(n_cases,)``.
        n_classes: Number of classes ``k``.
        weights: Case weights, shape ``(n_rows, n_cases)``.

    Returns:
        Array of shape ``(n_rows, k, k)``; rows = true class, columns = predicted class.
    """
    cell = np.asarray(y_true) * n_classes + np.asarray(y_pred)
    one_hot = np.zeros((cell.shape[0], n_classes * n_classes))
    one_hot[np.arange(cell.shape[0]), cell] = 1.0
    w = np.asarray(weights, dtype=np.float64)
    return (w @ one_hot).reshape(w.shape[0], n_classes, n_classes)


def metric_samples(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], weights: np.ndarray
) -> dict[MetricPath, np.ndarray]:
    """Every metric of the table, once per row of case weights.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, len(class_names))``.
        class_names: Name of each class, in label order.
        weights: Non-negative case weights (bootstrap multiplicities), shape
            ``(n_rows, n_cases)``; a single row of ones gives the plain metrics.

    Returns:
        ``{path: values}`` with ``values`` of shape ``(n_rows,)`` (NaN where undefined) and
        paths ``("overall", name)``, ``("macro", name)`` and ``("per_class", class, name)``.

    Raises:
        ValueError: If the inputs fail ``checked_cases`` or ``weights`` has the wrong shape
            or negative entries.
    """
    k = len(class_names)
    y, p = checked_cases(y_true, probs, k)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != y.shape[0]:
        raise ValueError(f"weights must have shape (rows, {y.shape[0]}), got {w.shape}")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative (they are case multiplicities)")

    cm = weighted_confusion(y, p.argmax(axis=1), k, w)
    total = cm.sum(axis=(1, 2))
    tp = np.diagonal(cm, axis1=1, axis2=2)
    fn = cm.sum(axis=2) - tp
    fp = cm.sum(axis=1) - tp
    tn = total[:, None] - tp - fn - fp
    per_class = rates_from_counts(tp, fp, fn, tn)
    ranking = [ranking_metrics(y == c, p[:, c], w) for c in range(k)]
    per_class["roc_auc"] = np.stack([auc for auc, _ in ranking], axis=1)
    per_class["pr_auc"] = np.stack([ap for _, ap in ranking], axis=1)

    out: dict[MetricPath, np.ndarray] = {
        ("overall", "accuracy"): _ratio(tp.sum(axis=1), total),
        # The mean propagates NaN: balanced accuracy needs every class present.
        ("overall", "balanced_accuracy"): per_class["sensitivity"].mean(axis=1),
    }
    for name in PER_CLASS_NAMES:
        out[("macro", name)] = per_class[name].mean(axis=1)
    for c, class_name in enumerate(class_names):
        for name in PER_CLASS_NAMES:
            out[("per_class", str(class_name), name)] = per_class[name][:, c]
    return out


def nest_metrics(flat: Mapping[MetricPath, Any]) -> dict[str, Any]:
    """Turn ``{("per_class", "benign", "f1"): v}`` into ``{"per_class": {"benign": {"f1": v}}}``.

    Args:
        flat: Values keyed by metric path, as ``metric_samples`` returns them.

    Returns:
        The nested dict, keys in first-seen order.
    """
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        node = nested
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return nested


def clinical_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """The clinical metric table of a k-class classifier, as a JSON-serialisable dict.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, len(class_names))``.
        class_names: Name of each class, in label order.

    Returns:
        ``{"n_cases", "class_names", "overall": {"accuracy", "balanced_accuracy"},
        "macro": {metric: value}, "per_class": {class: {metric: value, "support": int}},
        "confusion_matrix"}`` where metric is each of ``sensitivity, specificity, ppv, npv,
        f1, roc_auc, pr_auc``; values are floats, or ``None`` where undefined. The confusion
        matrix has rows = true class, columns = predicted class.

    Raises:
        ValueError: If the shapes of ``y_true``, ``probs`` and ``class_names`` disagree,
            ``probs`` is not finite, a label is out of range or two classes share a name.
    """
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class names must be unique, got {list(class_names)}")
    k = len(class_names)
    y, p = checked_cases(y_true, probs, k)
    ones = np.ones((1, y.shape[0]))
    flat = {
        path: None if np.isnan(values[0]) else float(values[0])
        for path, values in metric_samples(y, p, class_names, ones).items()
    }
    table = nest_metrics(flat)
    support = np.bincount(y, minlength=k)
    for c, name in enumerate(class_names):
        table["per_class"][str(name)]["support"] = int(support[c])
    cm = weighted_confusion(y, p.argmax(axis=1), k, ones)[0]
    return {
        "n_cases": int(y.shape[0]),
        "class_names": [str(name) for name in class_names],
        **table,
        "confusion_matrix": [[int(v) for v in row] for row in cm],
    }
