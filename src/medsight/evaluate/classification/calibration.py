"""Calibration: expected calibration error, reliability-diagram data, temperature scaling.

Labels are integer class indices ``0..k-1``; ``probs`` has shape ``(n_cases, k)``. A case's
*confidence* is its largest class probability and it is *correct* when that class is the
true one. Confidences fall into ``n_bins`` equal-width bins ``(lower, upper]`` over
``[0, 1]`` (a confidence of exactly 0 goes to the first bin), and

    ECE = sum_b (n_b / n) * |accuracy_b - confidence_b|

(Guo et al. 2017, "On Calibration of Modern Neural Networks"; 15 bins by default, as there).

ECE is biased upwards on few cases: even a perfectly calibrated model shows a gap in each
sparsely filled bin. `ece_sampling_noise` measures that floor for the cases at hand: it keeps
their confidences, draws each case's correctness from a Bernoulli of its own confidence (what a
calibrated model would give) and reports the ECE of those draws (mean and 95th percentile).
An observed ECE inside that range cannot be told apart from sampling noise on this many cases
(on 60 cases with confidences around 0.8-1.0 the floor is about 0.05).

``TemperatureScaler`` divides logits by one scalar ``T`` fitted on validation cases by
minimising the negative log-likelihood. It is written here rather than taken from a
library because scikit-learn's ``CalibratedClassifierCV`` needs the classifier, not its
scores, and offers no temperature method; the fit is one bounded scalar minimisation with
``scipy.optimize.minimize_scalar``. Callers that only have probabilities pass their
logarithm (``inputs="probs"`` does it for them): ``softmax(log p / T)`` is temperature
scaling of the underlying logits, since softmax ignores the per-row shift ``log p`` has.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from medsight.evaluate.segmentation.case_arrays import checked_cases

DEFAULT_BINS = 15
# log(0) is -inf; probabilities below this are treated as this when taking logs.
PROB_FLOOR = 1e-12


def _bin_of(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Each value's equal-width bin ``(lower, upper]`` over [0, 1] (0 goes to the first).

    Raises:
        ValueError: ``n_bins`` is not a positive integer.
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    return np.clip(np.ceil(values * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def _confidence_bins(
    y_true: np.ndarray, probs: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, p = checked_cases(y_true, probs)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    return _bin_of(confidence, n_bins), confidence, correct


def reliability_bins(
    y_true: np.ndarray, probs: np.ndarray, n_bins: int = DEFAULT_BINS
) -> list[dict[str, Any]]:
    """Per-bin data of a reliability diagram.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, k)``.
        n_bins: Number of equal-width confidence bins.

    Returns:
        One dict per bin, lowest first: ``{"lower", "upper", "count", "confidence",
        "accuracy"}``; ``confidence`` (mean confidence) and ``accuracy`` are ``None`` for
        an empty bin.

    Raises:
        ValueError: If the inputs are inconsistent or ``n_bins`` is not a positive integer.
    """
    bin_index, confidence, correct = _confidence_bins(y_true, probs, n_bins)
    counts = np.bincount(bin_index, minlength=n_bins)
    conf_sums = np.bincount(bin_index, weights=confidence, minlength=n_bins)
    correct_sums = np.bincount(bin_index, weights=correct, minlength=n_bins)
    bins = []
    for b in range(n_bins):
        count = int(counts[b])
        bins.append(
            {
                "lower": b / n_bins,
                "upper": (b + 1) / n_bins,
                "count": count,
                "confidence": float(conf_sums[b] / count) if count else None,
                "accuracy": float(correct_sums[b] / count) if count else None,
            }
        )
    return bins


def expected_calibration_error(
    y_true: np.ndarray, probs: np.ndarray, n_bins: int = DEFAULT_BINS
) -> float:
    """Expected calibration error of the top-class confidence (see the module docstring).

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, k)``.
        n_bins: Number of equal-width confidence bins.

    Returns:
        ECE in ``[0, 1]``.

    Raises:
        ValueError: If the inputs are inconsistent or ``n_bins`` is not a positive integer.
    """
    bin_index, confidence, correct = _confidence_bins(y_true, probs, n_bins)
    gap_sums = np.bincount(bin_index, weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gap_sums).sum() / confidence.shape[0])


def ece_sampling_noise(
    probs: np.ndarray, n_bins: int = DEFAULT_BINS, draws: int = 1000, seed: int = 0
) -> dict[str, float]:
    """The ECE a perfectly calibrated model would show on these cases (module docstring).

    Args:
        probs: Class probabilities, shape ``(n_cases, k)``.
        n_bins: Number of equal-width confidence bins.
        draws: Simulated label draws.
        seed: Seed of the draws (the same cases give the same figures).

    Returns:
        ``{"mean", "p95", "draws"}``: the mean and 95th percentile ECE of the draws.

    Raises:
        ValueError: If ``probs`` is not 2D or ``n_bins`` is not a positive integer.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs must have shape (n_cases, k), got {p.shape}")
    confidence = p.max(axis=1)
    bin_index = _bin_of(confidence, n_bins)
    rng = np.random.default_rng(seed)
    correct = rng.random((draws, confidence.shape[0])) < confidence  # (draws, n)
    gaps = correct - confidence
    # per draw: sum over bins of |sum of gaps in the bin|, via one-hot bin membership
    onehot = np.eye(n_bins)[bin_index]  # (n, bins)
    ece = np.abs(gaps @ onehot).sum(axis=1) / confidence.shape[0]
    return {
        "mean": float(ece.mean()),
        "p95": float(np.percentile(ece, 95)),
        "draws": int(draws),
    }


def negative_log_likelihood(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-probability of the true class (log loss), probabilities floored.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, k)``.

    Returns:
        The mean NLL in nats.

    Raises:
        ValueError: If the inputs are inconsistent.
    """
    y, p = checked_cases(y_true, probs)
    true_prob = np.maximum(p[np.arange(y.shape[0]), y], PROB_FLOOR)
    return float(-np.log(true_prob).mean())


def calibration_report(
    y_true: np.ndarray, probs: np.ndarray, n_bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    """ECE, NLL and reliability-diagram bins in one JSON-serialisable dict.

    Args:
        y_true: Integer class index of each case, shape ``(n_cases,)``.
        probs: Class probabilities, shape ``(n_cases, k)``.
        n_bins: Number of equal-width confidence bins.

    Returns:
        ``{"n_cases", "n_bins", "ece", "nll", "bins", "ece_sampling_noise"}`` with ``bins``
        as from ``reliability_bins`` and the last from `ece_sampling_noise`.

    Raises:
        ValueError: If the inputs are inconsistent or ``n_bins`` is not a positive integer.
    """
    y, p = checked_cases(y_true, probs)
    return {
        "n_cases": int(y.shape[0]),
        "n_bins": int(n_bins),
        "ece": expected_calibration_error(y, p, n_bins),
        "nll": negative_log_likelihood(y, p),
        "bins": reliability_bins(y, p, n_bins),
        "ece_sampling_noise": ece_sampling_noise(p, n_bins),
    }


def logits_of(scores: np.ndarray, inputs: str) -> np.ndarray:
    """Logits from ``inputs="logits"`` scores, or the floored log of ``"probs"``.

    Raises:
        ValueError: ``inputs`` is neither, or ``scores`` is not a finite ``(n, k >= 2)``
            array (of non-negative probabilities for ``"probs"``).
    """
    if inputs not in ("logits", "probs"):
        raise ValueError(f"inputs must be 'logits' or 'probs', got {inputs!r}")
    z = np.asarray(scores, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"scores must have shape (n_cases, k >= 2), got {z.shape}")
    if inputs == "probs":
        if np.any(z < 0) or not np.all(np.isfinite(z)):
            raise ValueError("inputs='probs' needs finite, non-negative probabilities")
        z = np.log(np.maximum(z, PROB_FLOOR))
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain NaN or infinite values (log of 0? use inputs='probs')")
    return z


class TemperatureScaler:
    """Temperature scaling: ``probs = softmax(logits / T)`` with ``T`` fitted on validation.

    ``T > 1`` softens over-confident predictions, ``T < 1`` sharpens under-confident ones;
    the argmax, hence accuracy, never changes.

    Args:
        inputs: ``"logits"`` (logits or log-probabilities) or ``"probs"`` (probabilities,
            whose floored logarithm is used as logits).
        bounds: Search interval for ``T``; a fitted value at a bound means the NLL kept
            falling beyond it (e.g. perfectly separated validation cases).

    Attributes:
        temperature_: The fitted temperature.
        nll_before_: Validation NLL at ``T = 1``.
        nll_after_: Validation NLL at ``temperature_``.
    """

    def __init__(
        self,
        inputs: Literal["logits", "probs"] = "logits",
        bounds: tuple[float, float] = (0.01, 100.0),
    ) -> None:
        self.inputs = inputs
        self.bounds = bounds

    def fit(self, scores: np.ndarray, y_true: np.ndarray) -> TemperatureScaler:
        """Fit ``T`` by minimising the validation negative log-likelihood.

        Args:
            scores: Validation logits (or log-probabilities, or probabilities with
                ``inputs="probs"``), shape ``(n_cases, k)``.
            y_true: Validation class indices, shape ``(n_cases,)``.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: If the inputs are inconsistent or not finite, or ``bounds`` is not
                ``0 < low < high``.
        """
        low, high = self.bounds
        if not 0.0 < low < high:
            raise ValueError(f"bounds must satisfy 0 < low < high, got {self.bounds}")
        z = logits_of(scores, self.inputs)
        y, _ = checked_cases(y_true, z)
        rows = np.arange(y.shape[0])

        def nll(log_t: float) -> float:
            return float(-log_softmax(z / np.exp(log_t), axis=1)[rows, y].mean())

        # NLL is convex in 1/T, hence unimodal in log T: a bounded Brent search suffices.
        result = minimize_scalar(
            nll, bounds=(np.log(low), np.log(high)), method="bounded", options={"xatol": 1e-6}
        )
        self.temperature_ = float(np.exp(result.x))
        self.nll_before_ = nll(0.0)
        self.nll_after_ = float(result.fun)
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``softmax(logits / temperature_)``.

        Args:
            scores: Logits (or log-probabilities, or probabilities with
                ``inputs="probs"``), shape ``(n_cases, k)``.

        Returns:
            Probabilities, shape ``(n_cases, k)``, rows summing to 1.

        Raises:
            RuntimeError: If called before ``fit``.
            ValueError: If ``scores`` is not a finite 2-D array.
        """
        if not hasattr(self, "temperature_"):
            raise RuntimeError("TemperatureScaler is not fitted: call fit(scores, y) first")
        return np.asarray(softmax(logits_of(scores, self.inputs) / self.temperature_, axis=1))


def risk_calibration_error(
    y_true: np.ndarray, risk: np.ndarray, n_bins: int = DEFAULT_BINS
) -> float:
    """ECE of a binary risk score: mean |observed rate - mean risk| over equal-width risk bins.

    Unlike `expected_calibration_error` (top-class confidence), this bins the probability of
    the event itself, which is what a clinician reads off a risk model: with a rare outcome
    the top-class confidence is near 1 for almost everyone and hides a miscalibrated tail.

    Args:
        y_true: 0/1 outcome of each case, shape ``(n_cases,)``.
        risk: predicted probability of the event, shape ``(n_cases,)``.
        n_bins: number of equal-width bins on [0, 1].

    Returns:
        The count-weighted mean gap, in ``[0, 1]``.

    Raises:
        ValueError: inconsistent shapes, no cases, or risks outside [0, 1].
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(risk, dtype=np.float64).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need one risk per outcome, got {y.shape} and {p.shape}")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("risks must lie in [0, 1]")
    bins = _bin_of(p, n_bins)
    gaps = np.bincount(bins, weights=y - p, minlength=n_bins)
    return float(np.abs(gaps).sum() / y.size)
