"""A decision threshold chosen on validation data, and its performance on test data.

A k-class model answers a clinical yes/no question through a set of positive classes:
for the 3-class lung task (normal, benign, malignant) "abnormal vs normal" is
``positive_classes=[1, 2]`` and "malignant vs rest" is ``positive_classes=[2]``. The score
of a case is the summed probability of the positive classes, and a case is called positive
when ``score >= threshold``.

The threshold is fitted on *validation* cases, never on the test cases it is reported on
(that would make the test sensitivity optimistic by construction):

- ``method="youden"`` maximises Youden's J = sensitivity + specificity - 1 (ties: the
  highest such threshold);
- ``method="sensitivity"`` takes the *highest* threshold whose validation sensitivity is at
  least ``target_sensitivity``. Lowering the threshold from the top, it is the first one
  that reaches the target; every lower threshold also reaches it but gives up specificity.

Test sensitivity, specificity, PPV and NPV then come with percentile-bootstrap intervals
that resample patients (see ``bootstrap.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from sklearn.metrics import roc_curve

from medsight.evaluate.bootstrap import patient_resample_weights, percentile_interval
from medsight.evaluate.classification.clinical_metrics import rates_from_counts
from medsight.evaluate.segmentation.case_arrays import checked_cases, patient_codes

REPORTED_RATES = ("sensitivity", "specificity", "ppv", "npv")


def positive_score(probs: np.ndarray, positive_classes: Sequence[int]) -> np.ndarray:
    """The one-vs-rest score of a set of positive classes: their summed probability.

    Args:
        probs: Class probabilities, shape ``(n_cases, k)``.
        positive_classes: Indices of the classes that count as positive.

    Returns:
        Score of each case, shape ``(n_cases,)``.

    Raises:
        ValueError: If ``positive_classes`` is empty, repeats a class, names a class outside
            ``0..k-1`` or holds every class (then there is no negative class).
    """
    p = np.asarray(probs, dtype=np.float64)
    k = p.shape[1]
    chosen = [int(c) for c in positive_classes]
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"positive_classes must be distinct class indices, got {chosen}")
    if min(chosen) < 0 or max(chosen) >= k:
        raise ValueError(f"positive_classes {chosen} must lie in 0..{k - 1}")
    if len(chosen) == k:
        raise ValueError("positive_classes holds every class: nothing would be negative")
    return p[:, chosen].sum(axis=1)


def _outcomes(truth: np.ndarray, called: np.ndarray) -> np.ndarray:
    """Indicator rows (TP, FP, FN, TN) of each case, shape ``(4, n_cases)``."""
    return np.stack([truth & called, ~truth & called, truth & ~called, ~truth & ~called])


class OperatingPoint:
    """Chooses a threshold on the positive-class score of validation cases.

    Args:
        positive_classes: Class indices that count as positive (``[1, 2]`` for abnormal
            vs normal in the lung task).
        method: ``"youden"`` or ``"sensitivity"`` (see the module docstring).
        target_sensitivity: The validation sensitivity to reach with
            ``method="sensitivity"``; ignored by ``"youden"``.

    Attributes:
        threshold_: The fitted threshold; a case is positive when its score is ``>=`` it.
        n_classes_: Number of classes seen in ``fit``.
        validation_: ``{"n_cases", "n_positive", "sensitivity", "specificity"}`` at
            ``threshold_`` on the validation cases.
    """

    def __init__(
        self,
        positive_classes: Sequence[int],
        method: Literal["youden", "sensitivity"] = "youden",
        target_sensitivity: float = 0.95,
    ) -> None:
        self.positive_classes = positive_classes
        self.method = method
        self.target_sensitivity = target_sensitivity

    def fit(self, probs: np.ndarray, y_true: np.ndarray) -> OperatingPoint:
        """Choose the threshold on validation cases.

        Args:
            probs: Validation class probabilities, shape ``(n_cases, k)``.
            y_true: Validation class indices, shape ``(n_cases,)``.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: If the method or target is unknown/out of range, or the validation
                cases lack positives or negatives (no threshold can be judged then).
        """
        if self.method not in ("youden", "sensitivity"):
            raise ValueError(f"method must be 'youden' or 'sensitivity', got {self.method!r}")
        if self.method == "sensitivity" and not 0.0 < self.target_sensitivity <= 1.0:
            raise ValueError(f"target_sensitivity must be in (0, 1], got {self.target_sensitivity}")
        y, p = checked_cases(y_true, probs)
        score = positive_score(p, self.positive_classes)
        truth = np.isin(y, list(self.positive_classes))
        n_pos = int(truth.sum())
        if n_pos == 0 or n_pos == truth.shape[0]:
            raise ValueError(
                f"validation cases need positives and negatives; got {n_pos} positive of "
                f"{truth.shape[0]}"
            )
        if self.method == "youden":
            fpr, tpr, thresholds = roc_curve(truth, score, drop_intermediate=False)
            youden = np.where(np.isfinite(thresholds), tpr - fpr, -np.inf)
            threshold = float(thresholds[int(np.argmax(youden))])
        else:
            positives_desc = np.sort(score[truth])[::-1]
            # The tolerance keeps 0.95 * 20 from rounding up to 20 positives.
            needed = min(n_pos, max(1, math.ceil(self.target_sensitivity * n_pos - 1e-9)))
            threshold = float(positives_desc[needed - 1])
        self.threshold_ = threshold
        self.n_classes_ = int(p.shape[1])
        rates = rates_from_counts(*_outcomes(truth, score >= threshold).sum(axis=1))
        self.validation_ = {
            "n_cases": int(truth.shape[0]),
            "n_positive": n_pos,
            "sensitivity": float(rates["sensitivity"]),
            "specificity": float(rates["specificity"]),
        }
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise RuntimeError("OperatingPoint is not fitted: call fit(probs_val, y_val) first")

    def predict(self, probs: np.ndarray) -> np.ndarray:
        """Call each case positive or negative at the fitted threshold.

        Args:
            probs: Class probabilities, shape ``(n_cases, k)``.

        Returns:
            Boolean array, shape ``(n_cases,)``, ``True`` = positive.

        Raises:
            RuntimeError: If called before ``fit``.
            ValueError: If ``probs`` has a different number of classes than in ``fit``.
        """
        self._check_fitted()
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != self.n_classes_:
            raise ValueError(f"probs must have shape (n, {self.n_classes_}), got {p.shape}")
        return positive_score(p, self.positive_classes) >= self.threshold_

    def evaluate(
        self,
        probs: np.ndarray,
        y_true: np.ndarray,
        patient_ids: np.ndarray | Sequence[Any],
        class_names: Sequence[str] | None = None,
        n_boot: int = 1000,
        alpha: float = 0.05,
        seed: int = 0,
    ) -> dict[str, Any]:
        """Test performance at the fitted threshold, with patient-bootstrap intervals.

        Args:
            probs: Test class probabilities, shape ``(n_cases, k)``.
            y_true: Test class indices, shape ``(n_cases,)``.
            patient_ids: One patient ID per test case.
            class_names: Optional class names, to name the positive classes in the report.
            n_boot: Number of bootstrap resamples.
            alpha: One minus the nominal coverage of the intervals.
            seed: Seed of the resampling generator.

        Returns:
            A JSON-serialisable dict: ``positive_classes``, ``positive_class_names`` (or
            ``None``), ``method``, ``target_sensitivity`` (``None`` for Youden),
            ``threshold``, ``validation`` (as ``validation_``), ``test``: ``{"n_cases",
            "n_patients", "n_positive", "tp", "fp", "fn", "tn", "sensitivity",
            "specificity", "ppv", "npv"}`` with each rate a ``{"point", "low", "high",
            "n_boot_valid"}`` dict, and ``n_boot``, ``alpha``, ``seed``.

        Raises:
            RuntimeError: If called before ``fit``.
            ValueError: If the test inputs are inconsistent, a patient ID is missing or
                ``n_boot``/``alpha`` is out of range.
        """
        self._check_fitted()
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
        y, p = checked_cases(y_true, probs, self.n_classes_)
        codes = patient_codes(patient_ids, y.shape[0])
        truth = np.isin(y, list(self.positive_classes))
        called = self.predict(p)
        cells = _outcomes(truth, called)
        counts = cells.sum(axis=1)
        point = rates_from_counts(*counts)
        samples: dict[str, list[np.ndarray]] = {name: [] for name in REPORTED_RATES}
        for weights in patient_resample_weights(patient_ids, n_boot, seed):
            rates = rates_from_counts(*(weights @ cells.T.astype(np.float64)).T)
            for name in REPORTED_RATES:
                samples[name].append(rates[name])
        test: dict[str, Any] = {
            "n_cases": int(y.shape[0]),
            "n_patients": int(codes.max()) + 1,
            "n_positive": int(truth.sum()),
            **{
                name: int(count)
                for name, count in zip(("tp", "fp", "fn", "tn"), counts, strict=True)
            },
        }
        for name in REPORTED_RATES:
            test[name] = percentile_interval(
                float(point[name]), np.concatenate(samples[name]), alpha
            )
        chosen = [int(c) for c in self.positive_classes]
        return {
            "positive_classes": chosen,
            "positive_class_names": (
                None if class_names is None else [str(class_names[c]) for c in chosen]
            ),
            "method": self.method,
            "target_sensitivity": (
                float(self.target_sensitivity) if self.method == "sensitivity" else None
            ),
            "threshold": float(self.threshold_),
            "validation": dict(self.validation_),
            "test": test,
            "n_boot": int(n_boot),
            "alpha": float(alpha),
            "seed": int(seed),
        }
