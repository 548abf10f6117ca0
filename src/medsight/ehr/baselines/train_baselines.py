"""Train, save, load and score the two baselines every EHR risk run reports beside its models.

Why baselines at all: the honest question a run answers is "did the sequence model beat a
strong baseline, by how much, with what uncertainty?". On MIMIC-III in-hospital mortality a
logistic regression on per-variable summaries reached AUROC 0.848 against 0.870 for the best
LSTM (Harutyunyan et al. 2019); across MEDS tasks gradient boosting on windowed aggregates
comes within 0.01-0.03 AUROC of sequence models (MEDS-Tab). So each run trains, on the same
train split and choosing hyper-parameters on the same tuning split as its sequence models:

- ``logistic``: `LogisticBaseline` on `LastValueFeatures` (last value, missing flag and log
  count per frequent code, age, sex);
- ``lightgbm``: `BoostingBaseline` on `WindowAggregateFeatures` (count, last, mean, min, max
  per frequent code over 30 days, 1 year and all history).

Files, in ``RUN/baselines/`` (written as one folder that appears only when whole):
``logistic.json`` (coefficients, intercept, scaler, feature names), ``lightgbm.txt``
(LightGBM's text model) and ``features.json`` (both feature specs: codes, their names,
windows, clipping bounds and imputation means fitted on train). No pickle anywhere.
Samples whose label is unknown (-1) are scored but never fitted on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.ehr.baselines.boosting import BoostingBaseline
from medsight.ehr.baselines.last_values import LastValueFeatures
from medsight.ehr.baselines.logistic import LogisticBaseline
from medsight.ehr.baselines.window_aggregates import DEFAULT_WINDOWS, WindowAggregateFeatures
from medsight.ehr.data.encoded_samples import EncodedSamples
from medsight.errors import InputError
from medsight.runs.atomic import atomic_dir

BASELINES_DIR = "baselines"
LOGISTIC_FILE = "logistic.json"
LIGHTGBM_FILE = "lightgbm.txt"
FEATURES_FILE = "features.json"
#: the names the baselines go by in predictions.parquet and model.json, in this order
BASELINE_NAMES = ("logistic", "lightgbm")
FEATURES_FORMAT = "medsight-ehr-baseline-features/1"


@dataclass(frozen=True)
class FittedBaselines:
    """Both fitted baselines with the feature specs they read."""

    last_values: LastValueFeatures
    logistic: LogisticBaseline
    windows: WindowAggregateFeatures
    lightgbm: BoostingBaseline

    def score(self, samples: EncodedSamples) -> dict[str, np.ndarray]:
        """Each baseline's event probability for every sample, ``{name: (n,) float64}``."""
        logistic = self.logistic.predict_risk(self.last_values.transform(samples))
        lightgbm = self.lightgbm.predict_risk(self.windows.transform(samples))
        return {"logistic": logistic, "lightgbm": lightgbm}

    def save(self, run_dir: Path) -> Path:
        """Write ``RUN/baselines/`` (replacing an older one only once the new one is whole)."""
        folder = Path(run_dir) / BASELINES_DIR
        with atomic_dir(folder) as tmp:
            self.logistic.save(tmp / LOGISTIC_FILE)
            self.lightgbm.save(tmp / LIGHTGBM_FILE)
            spec = {
                "format": FEATURES_FORMAT,
                "logistic": self.last_values.to_dict(),
                "lightgbm": self.windows.to_dict(),
            }
            (tmp / FEATURES_FILE).write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
        return folder


def train_baselines(
    samples: EncodedSamples,
    run_dir: Path,
    vocab_size: int,
    seed: int = 0,
    *,
    code_names: Sequence[str] | None = None,
    logistic_top_k: int = 256,
    lightgbm_top_k: int = 128,
    windows_days: Sequence[int | None] = DEFAULT_WINDOWS,
) -> dict[str, np.ndarray]:
    """Fit both baselines on the train split (tuned on tuning), save them, score every sample.

    Args:
        samples: Every sample of the run, all splits (``split`` train / tuning / held_out).
        run_dir: The run folder; ``RUN/baselines/`` is written.
        vocab_size: The plan's vocabulary size ``V`` (real codes are ``2..V-1``).
        seed: Seed of both models.
        code_names: The plan's vocabulary (name of each index), for readable feature names.
        logistic_top_k: Codes the logistic regression sees (most frequent in train).
        lightgbm_top_k: Codes LightGBM sees.
        windows_days: LightGBM's look-back windows in days (None: all history).

    Returns:
        ``{"logistic": scores, "lightgbm": scores}``, each shape ``(n,)``, float64 in
        ``[0, 1]``, in the order of ``samples``.

    Raises:
        InputError: the train split has no labelled samples or only one outcome.
    """
    split = np.asarray(samples.split).astype(str)
    label = np.asarray(samples.label).astype(np.int64)
    train = np.flatnonzero((split == "train") & (label >= 0))
    tune = np.flatnonzero((split == "tuning") & (label >= 0))
    if np.unique(label[train]).shape[0] < 2:
        raise InputError(
            f"labels: the train split holds {train.shape[0]} labelled samples with "
            f"{np.unique(label[train]).shape[0]} distinct outcome(s); the baselines need both"
        )
    train_samples = samples.subset(train)
    y_train, y_tune = label[train], label[tune]

    last_values = LastValueFeatures(top_k=logistic_top_k).fit(train_samples, vocab_size, code_names)
    X = last_values.transform(samples)
    logistic = LogisticBaseline(seed=seed).fit(
        X[train], y_train, X[tune], y_tune, feature_names=last_values.feature_names_
    )
    del X

    windows = WindowAggregateFeatures(top_k=lightgbm_top_k, windows_days=windows_days).fit(
        train_samples, vocab_size, code_names
    )
    del train_samples
    W = windows.transform(samples)
    lightgbm = BoostingBaseline(seed=seed).fit(
        W[train], y_train, W[tune], y_tune, feature_names=windows.feature_names_
    )
    del W

    fitted = FittedBaselines(last_values, logistic, windows, lightgbm)
    fitted.save(run_dir)
    return fitted.score(samples)


def load_baselines(run_dir: Path) -> FittedBaselines:
    """The baselines `train_baselines` saved in ``RUN/baselines/``.

    Raises:
        InputError: a file is missing (run ``medsight train ... --task ehr-risk`` first) or
            is not what that command writes.
    """
    folder = Path(run_dir) / BASELINES_DIR
    for name in (LOGISTIC_FILE, LIGHTGBM_FILE, FEATURES_FILE):
        if not (folder / name).is_file():
            raise InputError(
                f"{folder / name}: missing; run `medsight train DATA --task ehr-risk` first"
            )
    try:
        spec = json.loads((folder / FEATURES_FILE).read_text(encoding="utf-8"))
        if spec.get("format") != FEATURES_FORMAT:
            raise ValueError(f"not a {FEATURES_FORMAT} file")
        last_values = LastValueFeatures.from_dict(spec["logistic"])
        windows = WindowAggregateFeatures.from_dict(spec["lightgbm"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{folder / FEATURES_FILE}: not a baseline feature spec ({exc})") from None
    try:
        logistic = LogisticBaseline.load(folder / LOGISTIC_FILE)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{folder / LOGISTIC_FILE}: not a logistic baseline ({exc})") from None
    if logistic.feature_names_ != last_values.feature_names_:
        raise InputError(f"{folder / LOGISTIC_FILE}: its features differ from {FEATURES_FILE}")
    try:
        lightgbm = BoostingBaseline.load(
            folder / LIGHTGBM_FILE, feature_names=windows.feature_names_
        )
    except ValueError as exc:
        raise InputError(f"{folder / LIGHTGBM_FILE}: not a usable LightGBM model ({exc})") from None
    return FittedBaselines(last_values, logistic, windows, lightgbm)


def score_baselines(run_dir: Path, samples: EncodedSamples) -> dict[str, np.ndarray]:
    """Score ``samples`` with the baselines saved in ``RUN/baselines/``.

    Returns:
        ``{"logistic": scores, "lightgbm": scores}``, each shape ``(n,)``, in ``[0, 1]``.

    Raises:
        InputError: see `load_baselines`.
    """
    return load_baselines(run_dir).score(samples)
