"""Split-conformal prediction sets: a set of classes that holds the truth with a set rate.

Labels are integer class indices ``0..k-1``; ``probs`` has shape ``(n_cases, k)``. On ``n``
held-out validation (calibration) cases, each case's non-conformity score of its true class
is computed and ``qhat`` is their ``ceil((n + 1)(1 - alpha))``-th smallest value (the
finite-sample corrected quantile). A new case's set holds every class whose score is
``<= qhat``; if calibration and test cases are exchangeable, the set contains the true class
with probability at least ``1 - alpha`` (Vovk et al. 2005; Angelopoulos & Bates 2021, "A
Gentle Introduction to Conformal Prediction"). The guarantee is marginal (on average over
cases), not per class; ``report`` shows per-class coverage for that reason.

Scores:

- ``"lac"`` (least ambiguous set-valued classifier, Sadinle et al. 2019): ``1 - p_class``;
  gives the smallest sets on average, but may leave hard cases with an empty set.
- ``"aps"`` (adaptive prediction sets, Romano et al. 2020), without randomisation: the
  total probability of the classes ranked at or above this one; sets grow on uncertain
  cases. Ties in probability are ranked by class index.

A set that is not exactly one class (empty, or several) means the model cannot decide at
the requested coverage: in a clinical workflow such cases are referred to a human reader.
Written here because the maths is a sort and a quantile; MAPIE would add a dependency that
wraps a scikit-learn estimator rather than working on stored probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from medsight.evaluate.segmentation.case_arrays import checked_cases


def nonconformity_scores(probs: np.ndarray, score: Literal["lac", "aps"] = "lac") -> np.ndarray:
    """The non-conformity score of every candidate class of every case.

    Args:
        probs: Class probabilities, shape ``(n_cases, k)``.
        score: ``"lac"`` or ``"aps"`` (see the module docstring).

    Returns:
        Array of shape ``(n_cases, k)``; lower = the class conforms better.

    Raises:
        ValueError: If ``score`` is unknown.
    """
    p = np.asarray(probs, dtype=np.float64)
    if score == "lac":
        return 1.0 - p
    if score == "aps":
        order = np.argsort(-p, axis=1, kind="stable")
        cumulative = np.cumsum(np.take_along_axis(p, order, axis=1), axis=1)
        scores = np.empty_like(p)
        np.put_along_axis(scores, order, cumulative, axis=1)
        return scores
    raise ValueError(f"score must be 'lac' or 'aps', got {score!r}")


class ConformalClassifier:
    """Split-conformal prediction sets from stored class probabilities.

    Args:
        alpha: Allowed miss rate; sets cover the truth with probability ``>= 1 - alpha``.
        score: ``"lac"`` or ``"aps"``.

    Attributes:
        qhat_: The calibrated score threshold; a class is in the set when its score is
            ``<= qhat_``.
        n_calibration_: Number of validation cases ``qhat_`` was computed from.
        n_classes_: Number of classes seen in ``fit``.
    """

    def __init__(self, alpha: float = 0.10, score: Literal["lac", "aps"] = "lac") -> None:
        self.alpha = alpha
        self.score = score

    def fit(self, probs: np.ndarray, y_true: np.ndarray) -> ConformalClassifier:
        """Calibrate ``qhat_`` on held-out validation cases.

        Args:
            probs: Validation class probabilities, shape ``(n_cases, k)``; these cases must
                not have been used to train the model.
            y_true: Validation class indices, shape ``(n_cases,)``.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: If ``alpha`` is not in ``(0, 1)``, ``score`` is unknown, the inputs
                are inconsistent, or there are too few cases for the requested coverage
                (``ceil((n + 1)(1 - alpha)) > n``, i.e. fewer than ``1/alpha - 1``).
        """
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie strictly between 0 and 1, got {self.alpha}")
        y, p = checked_cases(y_true, probs)
        n = y.shape[0]
        true_scores = np.sort(nonconformity_scores(p, self.score)[np.arange(n), y])
        # The tolerance stops float error in (n + 1)(1 - alpha) from adding a whole rank.
        rank = math.ceil((n + 1) * (1.0 - self.alpha) - 1e-9)
        if rank > n:
            raise ValueError(
                f"{n} calibration cases are too few for coverage {1 - self.alpha:g}: "
                f"need at least {math.ceil(1 / self.alpha - 1)}"
            )
        self.qhat_ = float(true_scores[rank - 1])
        self.n_calibration_ = int(n)
        self.n_classes_ = int(p.shape[1])
        return self

    def predict_sets(self, probs: np.ndarray) -> np.ndarray:
        """Prediction sets as a membership matrix.

        Args:
            probs: Class probabilities, shape ``(n_cases, k)``.

        Returns:
            Boolean array of shape ``(n_cases, k)``; ``[i, c]`` is ``True`` when class ``c``
            is in case ``i``'s set.

        Raises:
            RuntimeError: If called before ``fit``.
            ValueError: If ``probs`` does not have the ``k`` columns seen in ``fit``.
        """
        if not hasattr(self, "qhat_"):
            raise RuntimeError("ConformalClassifier is not fitted: call fit(probs, y) first")
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != self.n_classes_:
            raise ValueError(f"probs must have shape (n, {self.n_classes_}), got {p.shape}")
        return nonconformity_scores(p, self.score) <= self.qhat_

    def predict_set_lists(self, probs: np.ndarray) -> list[list[int]]:
        """Prediction sets as lists of class indices, ascending.

        Args:
            probs: Class probabilities, shape ``(n_cases, k)``.

        Returns:
            One list per case (possibly empty).

        Raises:
            RuntimeError: If called before ``fit``.
            ValueError: If ``probs`` does not have the ``k`` columns seen in ``fit``.
        """
        return [np.flatnonzero(row).tolist() for row in self.predict_sets(probs)]

    def report(
        self, probs: np.ndarray, y_true: np.ndarray, class_names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Empirical coverage and set sizes on test cases.

        Args:
            probs: Test class probabilities, shape ``(n_cases, k)``.
            y_true: Test class indices, shape ``(n_cases,)``.
            class_names: Optional class names for the per-class coverage keys (default:
                the class indices as text).

        Returns:
            A JSON-serialisable dict: ``score``, ``alpha``, ``target_coverage``, ``qhat``,
            ``n_calibration``, ``n_cases``, ``coverage`` (share of sets holding the true
            class), ``mean_set_size``, ``referred_share`` (share of sets that are not a
            single class), ``empty_share``, ``set_size_counts`` (``{"0": n, "1": n, ...}``)
            and ``per_class_coverage`` (``{class: float or None}``, ``None`` if no case).

        Raises:
            RuntimeError: If called before ``fit``.
            ValueError: If the inputs are inconsistent.
        """
        sets = self.predict_sets(probs)
        y, _ = checked_cases(y_true, probs, self.n_classes_)
        names = (
            [str(c) for c in range(self.n_classes_)]
            if class_names is None
            else [str(c) for c in class_names]
        )
        if len(names) != self.n_classes_:
            raise ValueError(f"got {len(names)} class names for {self.n_classes_} classes")
        covered = sets[np.arange(y.shape[0]), y]
        sizes = sets.sum(axis=1)
        size_counts = np.bincount(sizes, minlength=self.n_classes_ + 1)
        per_class = {
            name: float(covered[y == c].mean()) if np.any(y == c) else None
            for c, name in enumerate(names)
        }
        return {
            "score": self.score,
            "alpha": float(self.alpha),
            "target_coverage": float(1.0 - self.alpha),
            "qhat": self.qhat_,
            "n_calibration": self.n_calibration_,
            "n_cases": int(y.shape[0]),
            "coverage": float(covered.mean()),
            "mean_set_size": float(sizes.mean()),
            "referred_share": float(np.mean(sizes != 1)),
            "empty_share": float(np.mean(sizes == 0)),
            "set_size_counts": {str(s): int(n) for s, n in enumerate(size_counts)},
            "per_class_coverage": per_class,
        }
