"""`BoostingBaseline`: LightGBM on windowed aggregates, early-stopped on the tuning split.

The strong baseline of every EHR run: MEDS-Tab found gradient-boosted trees on per-code
windowed aggregates within about 0.01-0.03 AUROC of sequence models. LightGBM (CPU) grows
the trees with ``deterministic=True``, row-wise histograms and a fixed seed, so the same data,
seed and thread count give the same model; the thread count comes from ``OMP_NUM_THREADS``
(else the CPUs this process may use) because histogram sums are added per thread.
Early stopping watches AUROC on the tuning split; without a tuning split that holds both
outcomes it trains a fixed number of rounds. Positives are up-weighted by
``negatives / positives`` (``scale_pos_weight``) by default, so the scores rank well on rare
outcomes but over-state the event probability; the run's calibration step and AUROC do not
care, the Brier score does (say so when comparing it).

The model is saved in LightGBM's own text format (``booster.save_model``'s format, read back
with ``lgb.Booster(model_file=...)``), never pickled. LightGBM refuses JSON-special characters
in feature names, so the text model holds ``f{j}_{sanitised name}``; the real names travel in
``features.json`` (`train_baselines`). The fitted booster is itself re-read from its own text,
so a fitted model and the saved one give bit-identical scores.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import lightgbm as lgb
import numpy as np

from medsight.evaluate.classification.clinical_metrics import ranking_metrics
from medsight.hardware import usable_cores
from medsight.runs.atomic import write_text_atomic

#: characters LightGBM's feature names may not hold (JSON specials) and spaces
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]")


def default_threads() -> int:
    """Threads for LightGBM: ``OMP_NUM_THREADS`` when set, else the CPUs this process may use."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    return usable_cores()


class BoostingBaseline:
    """Binary LightGBM with early stopping on a tuning set.

    Args:
        num_leaves: Leaves per tree.
        learning_rate: Shrinkage per round.
        max_rounds: Most boosting rounds (early stopping usually ends sooner).
        early_stopping_rounds: Rounds without a tuning-AUROC gain before stopping.
        fixed_rounds: Rounds when there is no usable tuning set.
        min_child_samples: Fewest samples in a leaf.
        feature_fraction: Share of features each tree sees (seeded).
        lambda_l2: L2 penalty on leaf values.
        balanced: Weight positives by ``negatives / positives`` (``scale_pos_weight``).
        seed: LightGBM's seed (feature sampling and everything else it draws).
        num_threads: Threads; None reads the environment (`default_threads`).
    """

    def __init__(
        self,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        max_rounds: int = 1000,
        early_stopping_rounds: int = 50,
        fixed_rounds: int = 200,
        min_child_samples: int = 20,
        feature_fraction: float = 0.8,
        lambda_l2: float = 1.0,
        balanced: bool = True,
        seed: int = 0,
        num_threads: int | None = None,
    ) -> None:
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.fixed_rounds = fixed_rounds
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.lambda_l2 = lambda_l2
        self.balanced = balanced
        self.seed = seed
        self.num_threads = num_threads

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_tune: np.ndarray | None = None,
        y_tune: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> BoostingBaseline:
        """Grow trees on ``(X, y)``, stopping when tuning AUROC stops improving.

        Args:
            X: Features, shape ``(n, F)``, NaN = missing.
            y: Outcomes 0/1, shape ``(n,)``; both must occur.
            X_tune: Tuning features, shape ``(m, F)``.
            y_tune: Tuning outcomes, shape ``(m,)``.
            feature_names: Column names; defaults to ``x0..``.

        Returns:
            self.

        Raises:
            ValueError: ``y`` holds only one outcome (nothing to learn).
        """
        y = np.asarray(y).astype(np.float64)
        positives = int((y == 1).sum())
        if positives in (0, y.shape[0]):
            raise ValueError("boosting baseline: the training outcomes are all the same")
        self.feature_names_ = (
            list(feature_names)
            if feature_names is not None
            else [f"x{j}" for j in range(X.shape[1])]
        )
        self.num_threads_ = self.num_threads or default_threads()
        params: dict[str, object] = {
            "objective": "binary",
            "metric": "auc",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "lambda_l2": self.lambda_l2,
            "scale_pos_weight": ((y.shape[0] - positives) / positives if self.balanced else 1.0),
            "deterministic": True,
            "force_row_wise": True,
            "seed": self.seed,
            "num_threads": self.num_threads_,
            "verbosity": -1,
        }
        names = lightgbm_names(self.feature_names_)
        train = lgb.Dataset(X, label=y, feature_name=names, params={"verbosity": -1})
        tunable = (
            X_tune is not None
            and y_tune is not None
            and np.unique(np.asarray(y_tune)).shape[0] == 2
        )
        if tunable:
            assert X_tune is not None and y_tune is not None
            tune = lgb.Dataset(X_tune, label=np.asarray(y_tune, np.float64), reference=train)
            booster = lgb.train(
                params,
                train,
                num_boost_round=self.max_rounds,
                valid_sets=[tune],
                valid_names=["tuning"],
                callbacks=[
                    lgb.early_stopping(
                        self.early_stopping_rounds, first_metric_only=True, verbose=False
                    )
                ],
            )
            self.best_iteration_ = int(booster.best_iteration) or booster.current_iteration()
            self.selection_ = "rounds by early stopping on tuning AUROC"
        else:
            booster = lgb.train(params, train, num_boost_round=self.fixed_rounds)
            self.best_iteration_ = booster.current_iteration()
            self.selection_ = "fixed rounds (tuning split missing or with one outcome)"
        # Re-read from text: the in-memory model is exactly the one `save` writes.
        self.booster_ = lgb.Booster(
            model_str=booster.model_to_string(num_iteration=self.best_iteration_)
        )
        self.tuning_auroc_ = (
            _auroc(np.asarray(y_tune), self.predict_risk(X_tune))
            if tunable and X_tune is not None and y_tune is not None
            else float("nan")
        )
        return self

    def predict_risk(self, X: np.ndarray) -> np.ndarray:
        """Probability of the event (see module on weighting), shape ``(n,)``, in ``[0, 1]``."""
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        scores = self.booster_.predict(X, num_threads=self.num_threads_)
        return np.asarray(scores, dtype=np.float64)

    def save(self, path: Path) -> Path:
        """Write the model in LightGBM's text format (atomically)."""
        return write_text_atomic(path, self.booster_.model_to_string())

    @classmethod
    def load(cls, path: Path, feature_names: Sequence[str] | None = None) -> BoostingBaseline:
        """Read a text model `save` wrote (``lgb.Booster(model_file=...)``).

        Args:
            path: The ``.txt`` model.
            feature_names: The real feature names (the file holds sanitised ones).

        Returns:
            A fitted `BoostingBaseline` (hyper-parameters not restored: it only predicts).

        Raises:
            ValueError: the file is not a LightGBM model, or its feature names are not
                ``feature_names``.
        """
        model = cls(num_threads=None)
        try:
            model.booster_ = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise ValueError(str(exc)) from None
        model.num_threads_ = default_threads()
        model.best_iteration_ = model.booster_.current_iteration()
        stored = model.booster_.feature_name()
        if feature_names is not None and lightgbm_names(feature_names) != stored:
            raise ValueError(f"{path}: its feature names differ from the feature spec")
        model.feature_names_ = list(feature_names) if feature_names is not None else stored
        model.selection_ = "loaded"
        model.tuning_auroc_ = float("nan")
        return model


def lightgbm_names(names: Sequence[str]) -> list[str]:
    """Feature names LightGBM accepts: ``f{j}_`` + the name with unsafe characters as ``_``."""
    return [f"f{j}_{_UNSAFE.sub('_', name)}" for j, name in enumerate(names)]


def _auroc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC with the engine's one implementation (unit weights)."""
    truth = np.asarray(y).astype(bool)
    return float(ranking_metrics(truth, scores, np.ones((1, truth.shape[0])))[0][0])
