"""Bias-corrected temperature scaling: ``softmax(logits / T + b)`` fitted on validation.

Temperature scaling (`calibration.TemperatureScaler`) rescales every class's logit by the same
factor, so it cannot fix a model that gives one class systematically too little probability.
That is what an under-trained multi-class CT model does (the demo's classifier put benign
nodules' probability mass on ``normal``; the per-class decision rule had to weight benign 3-7x
to call them). Bias-corrected temperature scaling (BCTS; Alexandari, Kundaje and Shrikumar,
"Maximum Likelihood with Bias-Corrected Calibration is Hard-To-Beat at Label Shift
Adaptation", ICML 2020) adds one bias per class (the first fixed at 0) to the tempered logits,
fitted with ``T`` by minimising the validation negative log-likelihood: k parameters, so it
stays well-posed on the few dozen validation cases a hospital cohort gives, where full
vector or matrix scaling (2k or k^2 + k) would over-fit. On the demo's scans it lowered the
test ECE where temperature scaling raised it (0.127 -> 0.067 after 45 epochs; 0.094 -> 0.080
after 60).

Written here: scikit-learn's calibrators need the fitted estimator, not its scores, and
offer no multi-class temperature or bias method; the fit is one small L-BFGS minimisation
(``scipy.optimize.minimize``) of a convex objective in (1/T, b).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from medsight.evaluate.classification.calibration import logits_of
from medsight.evaluate.segmentation.case_arrays import checked_cases

#: |bias| and log T are searched within these bounds (e^8: a factor of ~3000 in odds)
MAX_ABS_BIAS = 8.0
LOG_T_BOUNDS = (np.log(0.01), np.log(100.0))


class BiasCorrectedScaler:
    """``probs = softmax(log p / T + b)`` with ``T`` and ``b`` (``b[0] = 0``) fitted on validation.

    Args:
        inputs: ``"logits"`` or ``"probs"`` (probabilities: their floored logarithm is used).

    Attributes:
        temperature_: The fitted temperature.
        bias_: The fitted per-class biases, shape ``(k,)``, the first 0.
        nll_before_: Validation NLL at ``T = 1``, ``b = 0``.
        nll_after_: Validation NLL at the fit.
    """

    def __init__(self, inputs: str = "probs") -> None:
        self.inputs = inputs

    def fit(self, scores: np.ndarray, y_true: np.ndarray) -> BiasCorrectedScaler:
        """Fit ``T`` and ``b`` by minimising the validation negative log-likelihood.

        Args:
            scores: Validation probabilities (or logits), shape ``(n_cases, k)``.
            y_true: Validation class indices, shape ``(n_cases,)``.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: If the inputs are inconsistent or not finite.
        """
        z = logits_of(scores, self.inputs)
        y, _ = checked_cases(y_true, z)
        rows, k = np.arange(y.shape[0]), z.shape[1]

        def nll(theta: np.ndarray) -> float:
            bias = np.concatenate([[0.0], theta[1:]])
            return float(-log_softmax(z / np.exp(theta[0]) + bias, axis=1)[rows, y].mean())

        bounds = [LOG_T_BOUNDS] + [(-MAX_ABS_BIAS, MAX_ABS_BIAS)] * (k - 1)
        result = minimize(nll, np.zeros(k), method="L-BFGS-B", bounds=bounds)
        self.temperature_ = float(np.exp(result.x[0]))
        self.bias_ = np.concatenate([[0.0], result.x[1:]])
        self.nll_before_ = nll(np.zeros(k))
        self.nll_after_ = float(result.fun)
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape ``(n_cases, k)``, rows summing to 1.

        Raises:
            RuntimeError: If called before ``fit``.
            ValueError: If ``scores`` is not a finite 2-D array with the fitted classes.
        """
        if not hasattr(self, "temperature_"):
            raise RuntimeError("BiasCorrectedScaler is not fitted: call fit(scores, y) first")
        z = logits_of(scores, self.inputs)
        if z.shape[1] != self.bias_.shape[0]:
            raise ValueError(f"scores have {z.shape[1]} classes, the fit had {len(self.bias_)}")
        return np.asarray(softmax(z / self.temperature_ + self.bias_, axis=1))
