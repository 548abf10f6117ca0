"""`LogisticBaseline`: standardised L2 logistic regression, tuned on the tuning split.

The model behind the floor every EHR run reports (Harutyunyan et al. 2019: logistic
regression 0.848 AUROC against 0.870 for the best LSTM on MIMIC-III in-hospital mortality).
The inverse regularisation strength ``C`` and the class weighting (none or ``balanced``) are
chosen from a small grid by AUROC on the tuning split; unweighted and stronger
regularisation win ties, so the probabilities stay as honest as the data allows.

scikit-learn fits it; once fitted the model is just ``sigmoid(((x - mean) / scale) . coef +
intercept)``, which is what `predict_risk` computes in numpy and what ``logistic.json``
stores (coefficients, intercept, scaler means and scales, feature names): a fitted model and
the same model loaded from JSON give bit-identical scores, and no pickle is ever written.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from medsight.evaluate.classification.clinical_metrics import ranking_metrics
from medsight.runs.atomic import write_text_atomic

FORMAT = "medsight-logistic-baseline/1"
#: rows scored at once (bounds the float64 copy of the features)
_SCORE_ROWS = 65_536


class LogisticBaseline:
    """L2 logistic regression on standardised features, ``C`` and class weight tuned.

    Args:
        Cs: Inverse regularisation strengths tried (ascending: ties keep the smaller).
        class_weights: Class weightings tried, ``None`` and/or ``"balanced"`` (ties keep the
            earlier).
        max_iter: L-BFGS iterations per fit.
        seed: Random state handed to scikit-learn (L-BFGS itself is deterministic).
    """

    def __init__(
        self,
        Cs: Sequence[float] = (0.001, 0.01, 0.1, 1.0),
        class_weights: Sequence[str | None] = (None, "balanced"),
        max_iter: int = 1000,
        seed: int = 0,
    ) -> None:
        self.Cs = Cs
        self.class_weights = class_weights
        self.max_iter = max_iter
        self.seed = seed

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_tune: np.ndarray | None = None,
        y_tune: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> LogisticBaseline:
        """Fit on ``(X, y)``, choosing ``C`` and the class weight by AUROC on the tuning set.

        When the tuning set is missing or holds only one outcome, AUROC is undefined there and
        the first class weight with ``C = 1`` is used (``selection_`` says so).

        Args:
            X: Features, shape ``(n, F)``, no NaN.
            y: Outcomes 0/1, shape ``(n,)``; both must occur.
            X_tune: Tuning features, shape ``(m, F)``.
            y_tune: Tuning outcomes, shape ``(m,)``.
            feature_names: Column names, for the saved model; defaults to ``x0..``.

        Returns:
            self.

        Raises:
            ValueError: ``y`` holds only one outcome (nothing to learn).
        """
        y = np.asarray(y).astype(np.int64)
        if np.unique(y).shape[0] < 2:
            raise ValueError("logistic baseline: the training outcomes are all the same")
        X = np.asarray(X, dtype=np.float64)
        self.feature_names_ = (
            list(feature_names)
            if feature_names is not None
            else [f"x{j}" for j in range(X.shape[1])]
        )
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = (X - self.mean_) / self.scale_
        tunable = (
            X_tune is not None
            and y_tune is not None
            and np.unique(np.asarray(y_tune)).shape[0] == 2
        )
        grid = (
            [(c, w) for w in self.class_weights for c in self.Cs]
            if tunable
            else [(1.0, self.class_weights[0])]
        )
        best: tuple[float, LogisticRegression, float, str | None] | None = None
        self.tuning_aurocs_: dict[str, float] = {}
        for c, weight in grid:
            model = LogisticRegression(
                C=c, class_weight=weight, max_iter=self.max_iter, random_state=self.seed
            )
            with warnings.catch_warnings():
                # max_iter is a stated budget; a not-quite-converged fit is still a model.
                warnings.simplefilter("ignore", category=ConvergenceWarning)
                model.fit(Z, y)
            self._set(model)
            if not tunable:
                best = (float("nan"), model, c, weight)
                break
            assert X_tune is not None and y_tune is not None
            auroc = _auroc(np.asarray(y_tune), self.predict_risk(X_tune))
            self.tuning_aurocs_[f"C={c:g},class_weight={weight}"] = auroc
            if best is None or auroc > best[0]:
                best = (auroc, model, c, weight)
        assert best is not None
        self.tuning_auroc_, model, self.C_, self.class_weight_ = best
        self._set(model)
        self.selection_ = (
            "C and class weight by tuning AUROC"
            if tunable
            else "defaults (tuning split missing or with one outcome)"
        )
        return self

    def _set(self, model: LogisticRegression) -> None:
        self.coef_ = np.asarray(model.coef_[0], dtype=np.float64)
        self.intercept_ = float(model.intercept_[0])

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of the event, shape ``(n,)``, float64."""
        # Folding the scaler into the weights keeps the float64 copy to one block at a time.
        weights = self.coef_ / self.scale_
        offset = self.intercept_ - float(self.mean_ @ weights)
        out = np.empty(X.shape[0], dtype=np.float64)
        for start in range(0, X.shape[0], _SCORE_ROWS):
            block = np.asarray(X[start : start + _SCORE_ROWS], dtype=np.float64)
            out[start : start + _SCORE_ROWS] = block @ weights + offset
        return out

    def predict_risk(self, X: np.ndarray) -> np.ndarray:
        """Probability of the event, shape ``(n,)``, float64 in ``[0, 1]``."""
        return np.asarray(expit(self.decision_function(X)), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """The fitted model as JSON-ready values (floats round-trip exactly)."""
        return {
            "format": FORMAT,
            "feature_names": self.feature_names_,
            "coefficients": self.coef_.tolist(),
            "intercept": self.intercept_,
            "scaler_mean": self.mean_.tolist(),
            "scaler_scale": self.scale_.tolist(),
            "C": self.C_,
            "class_weight": self.class_weight_,
            "selection": self.selection_,
            "tuning_auroc": None if np.isnan(self.tuning_auroc_) else self.tuning_auroc_,
            "tuning_aurocs": self.tuning_aurocs_,
            "params": {
                "Cs": list(self.Cs),
                "class_weights": list(self.class_weights),
                "max_iter": self.max_iter,
                "seed": self.seed,
            },
        }

    def save(self, path: Path) -> Path:
        """Write the fitted model as JSON (atomically)."""
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogisticBaseline:
        """The model `to_dict` described.

        Raises:
            ValueError: not a logistic-baseline dict, or its arrays differ in length.
            KeyError: a field is missing.
        """
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        params = data["params"]
        model = cls(
            Cs=params["Cs"],
            class_weights=params["class_weights"],
            max_iter=params["max_iter"],
            seed=params["seed"],
        )
        model.feature_names_ = [str(n) for n in data["feature_names"]]
        model.coef_ = np.asarray(data["coefficients"], dtype=np.float64)
        model.intercept_ = float(data["intercept"])
        model.mean_ = np.asarray(data["scaler_mean"], dtype=np.float64)
        model.scale_ = np.asarray(data["scaler_scale"], dtype=np.float64)
        model.C_ = float(data["C"])
        model.class_weight_ = data["class_weight"]
        model.selection_ = str(data["selection"])
        tuning = data["tuning_auroc"]
        model.tuning_auroc_ = float("nan") if tuning is None else float(tuning)
        model.tuning_aurocs_ = {str(k): float(v) for k, v in data["tuning_aurocs"].items()}
        n = len(model.feature_names_)
        if not (model.coef_.shape == model.mean_.shape == model.scale_.shape == (n,)):
            raise ValueError("coefficients, scaler and feature names differ in length")
        return model

    @classmethod
    def load(cls, path: Path) -> LogisticBaseline:
        """Read a model `save` wrote (raises OSError, ValueError or KeyError when unreadable)."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def _auroc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC with the engine's one implementation (unit weights)."""
    truth = np.asarray(y).astype(bool)
    return float(ranking_metrics(truth, scores, np.ones((1, truth.shape[0])))[0][0])
