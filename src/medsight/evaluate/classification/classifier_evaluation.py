"""The full evaluation of a classifier: what `metrics.json` and the report are made of.

Validation predictions fit everything that must not see the test set: the calibration
(temperature scaling, and bias-corrected temperature scaling, the one medsight reports as its
calibration: `bias_corrected_scaling` says why), the operating threshold, the per-class
decision weights (`class_decision`: every class's sensitivity at the rule the run predicts
with) and the conformal quantile. Test predictions are then scored with 95% bootstrap CIs
resampled by patient, overall and per subgroup.

The operating point answers a binary question: "abnormal vs normal" when a class is called
``normal`` (every other class is positive), otherwise "last class vs rest".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medsight.errors import InputError
from medsight.evaluate.bootstrap import metrics_with_ci
from medsight.evaluate.classification.bias_corrected_scaling import BiasCorrectedScaler
from medsight.evaluate.classification.calibration import TemperatureScaler, calibration_report
from medsight.evaluate.classification.class_decision import evaluate_class_weights
from medsight.evaluate.classification.classification_metrics import classification_metrics
from medsight.evaluate.classification.conformal import ConformalClassifier
from medsight.evaluate.classification.operating_point import OperatingPoint
from medsight.evaluate.classification.subgroups import subgroup_metrics


@dataclass(frozen=True)
class SplitPredictions:
    """Labels, probabilities and case attributes of one split."""

    y: np.ndarray
    probs: np.ndarray
    patient_ids: list[str]
    case_ids: list[str]
    sex: list[str]
    age: list[float]


def positive_classes(class_names: list[str]) -> list[int]:
    """Classes counted as positive for the operating point (see the module docstring)."""
    if "normal" in class_names:
        return [i for i, name in enumerate(class_names) if name != "normal"]
    return [len(class_names) - 1]


def evaluate_classifier(
    val: SplitPredictions,
    test: SplitPredictions,
    class_names: list[str],
    target_sensitivity: float | None = None,
    coverage: float = 0.90,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Score ``test`` with everything fitted on ``val``; a JSON-serialisable dict.

    Args:
        val, test: predictions of the validation and test splits.
        class_names: output order of the classes.
        target_sensitivity: choose the threshold reaching this validation sensitivity
            (default: Youden's J).
        coverage: target coverage of the conformal prediction sets.
        n_boot: bootstrap resamples for every CI.
        seed: seed of the resampling.
    """
    headline = classification_metrics(test.y, test.probs, class_names)
    scaler = TemperatureScaler(inputs="probs").fit(val.probs, val.y)
    calibrated = scaler.transform(test.probs)
    bcts = BiasCorrectedScaler(inputs="probs").fit(val.probs, val.y)
    positives = positive_classes(class_names)
    point = OperatingPoint(
        positives,
        method="sensitivity" if target_sensitivity else "youden",
        target_sensitivity=target_sensitivity or 0.95,
    ).fit(val.probs, val.y)
    try:
        conformal = ConformalClassifier(alpha=1 - coverage).fit(val.probs, val.y)
    except ValueError as exc:  # too few validation cases for the coverage: the user's choice
        raise InputError(f"conformal sets: {exc} (lower --coverage or add cases)") from None
    sets = conformal.predict_set_lists(test.probs)
    return {
        "split": "test",
        **headline,
        "with_ci": metrics_with_ci(test.y, test.probs, test.patient_ids, class_names, n_boot, seed),
        "calibration": {
            "temperature": float(scaler.temperature_),
            "before": calibration_report(test.y, test.probs),
            "after_temperature_scaling": calibration_report(test.y, calibrated),
            "bias_corrected": {
                "temperature": bcts.temperature_,
                "bias": {name: float(b) for name, b in zip(class_names, bcts.bias_, strict=True)},
            },
            "after_bias_corrected_scaling": calibration_report(test.y, bcts.transform(test.probs)),
        },
        "operating_point": {
            **point.evaluate(test.probs, test.y, test.patient_ids, class_names, n_boot, seed=seed),
            "question": " or ".join(class_names[i] for i in positives) + " vs the rest",
            "method": "target sensitivity" if target_sensitivity else "Youden's J",
        },
        "decision_rule": evaluate_class_weights(
            val.probs, val.y, test.probs, test.y, test.patient_ids, class_names, n_boot, seed
        ),
        "subgroups": subgroup_metrics(
            test.y,
            test.probs,
            test.patient_ids,
            class_names,
            sex=test.sex,
            age=np.asarray(test.age, dtype=float),
            n_boot=n_boot,
            seed=seed,
        ),
        "conformal": {
            **conformal.report(test.probs, test.y, class_names),
            "sets": {
                cid: [class_names[i] for i in s] for cid, s in zip(test.case_ids, sets, strict=True)
            },
        },
    }
