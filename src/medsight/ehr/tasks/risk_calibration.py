"""Turning a risk model's scores into probabilities a clinician can act on, fitted on tuning.

Three pieces, all fitted on the tuning split only (never on held-out patients):

- a calibration map: Platt scaling (``sigmoid(a * logit(p) + b)``, which also undoes the
  shift that class-weighted training puts into the scores), plain temperature scaling
  (``b = 0``; the engine's `TemperatureScaler`), or isotonic regression (scikit-learn) when
  the tuning split has enough of both outcomes for a step function not to overfit;
- a decision threshold on the calibrated probability, reaching a target sensitivity on tuning
  (the engine's `OperatingPoint`);
- a split-conformal quantile (the engine's `ConformalClassifier`, LAC score): a patient whose
  conformal set is not a single outcome is flagged for referral (the model cannot rule
  either outcome out at the stated coverage).

Saved as ``calibration.json`` in the run folder; prediction and the service apply it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError
from scipy.optimize import minimize
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression

from medsight.errors import InputError
from medsight.evaluate.classification.calibration import (
    TemperatureScaler,
    risk_calibration_error,
)
from medsight.evaluate.classification.conformal import ConformalClassifier
from medsight.evaluate.classification.operating_point import OperatingPoint
from medsight.runs.atomic import write_text_atomic

CALIBRATION_FILE = "calibration.json"
#: isotonic needs this many tuning cases of each outcome; below, Platt scaling
ISOTONIC_MIN_PER_CLASS = 200
_EPS = 1e-6

Method = Literal["platt", "temperature", "isotonic", "auto"]


class RiskCalibration(BaseModel):
    """A fitted calibration map, decision threshold and conformal quantile (see module)."""

    model_config = ConfigDict(frozen=True)

    method: Literal["platt", "temperature", "isotonic"]
    slope: float = 1.0
    intercept: float = 0.0
    isotonic_x: list[float] = []
    isotonic_y: list[float] = []
    threshold: float
    target_sensitivity: float
    conformal_qhat: float | None = None
    coverage: float = 0.9
    n_tuning: int
    n_tuning_positive: int
    ece_before: float
    ece_after: float

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the event for model scores in [0, 1]."""
        p = np.clip(np.asarray(scores, dtype=np.float64), _EPS, 1 - _EPS)
        if self.method == "isotonic":
            return np.interp(p, self.isotonic_x, self.isotonic_y)
        return np.asarray(expit(self.slope * logit(p) + self.intercept))

    def flag(self, probabilities: np.ndarray) -> np.ndarray:
        """True where the calibrated probability reaches the decision threshold."""
        return np.asarray(probabilities) >= self.threshold

    def refer(self, probabilities: np.ndarray) -> np.ndarray:
        """True where the conformal set is not one outcome (refer to a clinician)."""
        if self.conformal_qhat is None:
            return np.zeros(np.shape(probabilities), dtype=bool)
        p = np.asarray(probabilities, dtype=np.float64)
        in_set = (1 - np.stack([1 - p, p], axis=-1)) <= self.conformal_qhat
        return np.asarray(in_set.sum(axis=-1) != 1)

    def note(self) -> str:
        """One sentence for a result page: how the probability was calibrated."""
        name = {
            "platt": "Platt-scaled",
            "temperature": "temperature-scaled",
            "isotonic": "isotonic-calibrated",
        }[self.method]
        return (
            f"{name} on {self.n_tuning} tuning patients ({self.n_tuning_positive} with the "
            f"event); tuning ECE {self.ece_before:.3f} -> {self.ece_after:.3f}"
        )

    def save(self, run_dir: Path) -> Path:
        """Write ``calibration.json`` into ``run_dir``."""
        return write_text_atomic(
            Path(run_dir) / CALIBRATION_FILE, json.dumps(self.model_dump(), indent=2) + "\n"
        )

    @classmethod
    def load(cls, run_dir: Path) -> RiskCalibration:
        """Read ``run_dir/calibration.json``.

        Raises:
            InputError: missing (says which command makes it) or invalid.
        """
        path = Path(run_dir) / CALIBRATION_FILE
        if not path.is_file():
            raise InputError(
                f"{path}: missing; train the run with `medsight train --task ehr-risk`"
            )
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise InputError(f"{path}: invalid ({exc.errors()[0]['msg']})") from None


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    z = logit(np.clip(scores, _EPS, 1 - _EPS))

    def nll(params: np.ndarray) -> float:
        q = np.clip(expit(params[0] * z + params[1]), _EPS, 1 - _EPS)
        return float(-(y * np.log(q) + (1 - y) * np.log(1 - q)).mean())

    result = minimize(nll, np.array([1.0, 0.0]), method="Nelder-Mead", options={"xatol": 1e-6})
    return float(result.x[0]), float(result.x[1])


def fit_risk_calibration(
    scores: np.ndarray,
    labels: np.ndarray,
    method: Method = "auto",
    target_sensitivity: float = 0.8,
    coverage: float = 0.9,
) -> RiskCalibration:
    """Fit the calibration map, threshold and conformal quantile on tuning predictions.

    Args:
        scores: the model's (uncalibrated) event probabilities on the tuning split, (n,).
        labels: their 0/1 outcomes, (n,).
        method: "platt", "temperature", "isotonic", or "auto" (isotonic with at least
            `ISOTONIC_MIN_PER_CLASS` cases of each outcome, else Platt).
        target_sensitivity: the tuning sensitivity the decision threshold reaches.
        coverage: the conformal sets' coverage (1 - alpha).

    Raises:
        InputError: the tuning split lacks patients with or without the event (nothing can
            be calibrated; a larger cohort or another split is needed).
    """
    p = np.clip(np.asarray(scores, dtype=np.float64).ravel(), _EPS, 1 - _EPS)
    y = np.asarray(labels).astype(np.int64).ravel()
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        raise InputError(
            f"the tuning split has {positives} of {y.size} patients with the event: "
            "calibration needs both outcomes (use a larger cohort or other splits)"
        )
    if method == "auto":
        few = min(positives, y.size - positives) < ISOTONIC_MIN_PER_CLASS
        method = "platt" if few else "isotonic"
    slope, intercept, iso_x, iso_y = 1.0, 0.0, [], []
    if method == "platt":
        slope, intercept = _platt(p, y)
    elif method == "temperature":
        scaler = TemperatureScaler(inputs="probs").fit(np.stack([1 - p, p], axis=1), y)
        slope = 1.0 / scaler.temperature_
    else:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        iso_x = [float(v) for v in iso.X_thresholds_]
        iso_y = [float(v) for v in iso.y_thresholds_]
    partial = RiskCalibration(
        method=method,
        slope=slope,
        intercept=intercept,
        isotonic_x=iso_x,
        isotonic_y=iso_y,
        threshold=0.5,
        target_sensitivity=target_sensitivity,
        coverage=coverage,
        n_tuning=int(y.size),
        n_tuning_positive=positives,
        ece_before=0.0,
        ece_after=0.0,
    )
    calibrated = partial.calibrate(p)
    two = np.stack([1 - calibrated, calibrated], axis=1)
    point = OperatingPoint([1], method="sensitivity", target_sensitivity=target_sensitivity)
    point.fit(two, y)
    qhat = None
    try:
        qhat = ConformalClassifier(alpha=1 - coverage).fit(two, y).qhat_
    except ValueError:
        qhat = None  # too few tuning patients for the coverage: no referral flag
    return partial.model_copy(
        update={
            "threshold": float(point.threshold_),
            "conformal_qhat": qhat,
            "ece_before": risk_calibration_error(y, p),
            "ece_after": risk_calibration_error(y, calibrated),
        }
    )
