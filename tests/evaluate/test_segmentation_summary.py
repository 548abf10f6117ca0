import json
from typing import Any

import numpy as np
import pytest

from medsight.evaluate.bootstrap import patient_resample_weights
from medsight.evaluate.segmentation.segmentation_metrics import METRIC_NAMES
from medsight.evaluate.segmentation.segmentation_summary import (
    _weighted_medians,
    case_record,
    summarise_segmentation,
)


def record(
    case_id: str,
    dice: float,
    hd95: float | None = 2.0,
    volumes: tuple[float, float] = (10.0, 10.0),
    lesions: tuple[int, int, int] | None = None,
) -> dict[str, Any]:
    """A per-case record with one class, "tumour"; lesions is (tp, fn, fp)."""
    pred_ml, true_ml = volumes
    metrics = {
        "dice": dice,
        "iou": dice / (2 - dice),
        "hd95_mm": hd95,
        "surface_dice": dice,
        "volume_pred_ml": pred_ml,
        "volume_true_ml": true_ml,
        "volume_diff_ml": pred_ml - true_ml,
        "volume_diff_pct": 100 * (pred_ml - true_ml) / true_ml if true_ml else None,
    }
    out: dict[str, Any] = {"case_id": case_id, "metrics": {"tumour": metrics}}
    if lesions is not None:
        tp, fn, fp = lesions
        out["lesions"] = {"tumour": {"tp": tp, "fn": fn, "fp": fp}}
    return out


def random_cohort(seed: int, n_patients: int = 15) -> tuple[list[dict[str, Any]], list[str]]:
    rng = np.random.default_rng(seed)
    cases, ids = [], []
    for p in range(n_patients):
        for k in range(int(rng.integers(1, 4))):
            hd95 = None if rng.random() < 0.15 else float(rng.gamma(2.0, 2.0))
            lesions = (int(rng.integers(0, 4)), int(rng.integers(0, 2)), int(rng.integers(0, 3)))
            cases.append(record(f"c{p}-{k}", float(rng.beta(6, 2)), hd95, lesions=lesions))
            ids.append(f"P{p}")
    return cases, ids


def test_point_estimates_lie_inside_their_intervals() -> None:
    cases, ids = random_cohort(1)
    s = summarise_segmentation(cases, ids, seed=3, n_boot=500)
    tumour = s["per_class"]["tumour"]
    intervals = [tumour["metrics"][m][stat] for m in METRIC_NAMES for stat in ("mean", "median")]
    intervals += [tumour["lesions"]["sensitivity"], tumour["lesions"]["fp_per_case"]]
    for ci in intervals:
        assert ci["low"] <= ci["point"] <= ci["high"]
    dice = tumour["metrics"]["dice"]["mean"]
    assert dice["high"] - dice["low"] > 0.01
    assert dice["n_boot_valid"] == 500


def test_interval_collapses_when_every_case_is_the_same() -> None:
    cases = [record(f"c{i}", 0.8, lesions=(2, 1, 1)) for i in range(9)]
    s = summarise_segmentation(cases, [f"P{i // 2}" for i in range(9)], n_boot=200)
    tumour = s["per_class"]["tumour"]
    for stat in ("mean", "median"):
        ci = tumour["metrics"]["dice"][stat]
        for bound in ("point", "low", "high"):
            assert ci[bound] == pytest.approx(0.8, abs=1e-12)
    assert tumour["lesions"]["sensitivity"]["low"] == pytest.approx(2 / 3)
    assert tumour["lesions"]["sensitivity"]["high"] == pytest.approx(2 / 3)
    assert tumour["lesions"]["fp_per_case"]["low"] == tumour["lesions"]["fp_per_case"]["high"]


def test_patients_are_resampled_as_units() -> None:
    # Every patient has one failed (Dice 0) and one perfect (Dice 1) case: any resample of
    # whole patients has Dice mean and median exactly 0.5, whereas resampling cases would not.
    cases = [record(f"c{i}", float(i % 2)) for i in range(20)]
    grouped = summarise_segmentation(cases, [f"P{i // 2}" for i in range(20)], n_boot=300)
    for stat in ("mean", "median"):
        ci = grouped["per_class"]["tumour"]["metrics"]["dice"][stat]
        assert (ci["low"], ci["point"], ci["high"]) == (0.5, 0.5, 0.5)
    ungrouped = summarise_segmentation(cases, [f"P{i}" for i in range(20)], n_boot=300)
    ci = ungrouped["per_class"]["tumour"]["metrics"]["dice"]["mean"]
    assert ci["high"] - ci["low"] > 0.2


def test_a_patient_with_two_cases_weighs_twice_in_the_point_estimate() -> None:
    cases = [record("a1", 1.0), record("a2", 1.0), record("b1", 0.0)]
    s = summarise_segmentation(cases, ["A", "A", "B"], n_boot=100)
    assert s["per_class"]["tumour"]["metrics"]["dice"]["mean"]["point"] == pytest.approx(2 / 3)
    assert s["n_cases"] == 3
    assert s["n_patients"] == 2


def test_intervals_match_a_naive_patient_bootstrap() -> None:
    cases, ids = random_cohort(7)
    n_boot, seed = 200, 11
    s = summarise_segmentation(cases, ids, seed=seed, n_boot=n_boot)
    hd = np.array([np.nan if c["metrics"]["tumour"]["hd95_mm"] is None else
                   c["metrics"]["tumour"]["hd95_mm"] for c in cases])  # fmt: skip
    tp = np.array([c["lesions"]["tumour"]["tp"] for c in cases])
    fn = np.array([c["lesions"]["tumour"]["fn"] for c in cases])
    means, medians, sens = [], [], []
    for weights in np.vstack(list(patient_resample_weights(ids, n_boot, seed))):
        drawn = np.repeat(np.arange(len(cases)), weights.astype(int))
        values = hd[drawn][np.isfinite(hd[drawn])]
        means.append(values.mean())
        medians.append(np.median(values))
        sens.append(tp[drawn].sum() / (tp[drawn].sum() + fn[drawn].sum()))
    hd_summary = s["per_class"]["tumour"]["metrics"]["hd95_mm"]
    for stat, samples in (("mean", means), ("median", medians)):
        low, high = np.quantile(samples, [0.025, 0.975])
        assert hd_summary[stat]["low"] == pytest.approx(low)
        assert hd_summary[stat]["high"] == pytest.approx(high)
    assert hd_summary["median"]["point"] == pytest.approx(np.nanmedian(hd))
    low, high = np.quantile(sens, [0.025, 0.975])
    assert s["per_class"]["tumour"]["lesions"]["sensitivity"]["low"] == pytest.approx(low)
    assert s["per_class"]["tumour"]["lesions"]["sensitivity"]["high"] == pytest.approx(high)


def test_weighted_median_equals_median_of_the_repeated_values() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(size=9)
    values[3] = values[5]  # a tie
    weights = rng.integers(0, 4, size=(300, 9)).astype(float)
    weights[0] = 0.0  # a resample that weighs nothing
    got = _weighted_medians(values, weights)
    assert np.isnan(got[0])
    expected = [np.median(np.repeat(values, w.astype(int))) for w in weights[1:]]
    np.testing.assert_allclose(got[1:], expected, rtol=0, atol=1e-12)


def test_undefined_values_are_counted_and_left_out() -> None:
    cases = [
        record("a", 0.9, hd95=2.0),
        record("b", 0.0, hd95=None),
        record("c", 0.7, hd95=4.0),
        record("d", 1.0, hd95=0.0, volumes=(0.0, 0.0)),
    ]
    s = summarise_segmentation(cases, ["A", "B", "C", "D"], n_boot=100)
    tumour = s["per_class"]["tumour"]
    assert tumour["metrics"]["hd95_mm"]["n_undefined"] == 1
    assert tumour["metrics"]["hd95_mm"]["n_defined"] == 3
    assert tumour["metrics"]["hd95_mm"]["mean"]["point"] == pytest.approx(2.0)
    assert tumour["metrics"]["volume_diff_pct"]["n_undefined"] == 1
    assert tumour["n_both_empty"] == 1
    assert tumour["metrics"]["dice"]["mean"]["point"] == pytest.approx(2.6 / 4)


def test_pooled_lesion_sensitivity_and_false_positives_per_case() -> None:
    cases = [record("a", 0.8, lesions=(3, 1, 0)), record("b", 0.8, lesions=(0, 4, 5))]
    s = summarise_segmentation(cases, ["A", "B"], n_boot=100)
    lesions = s["per_class"]["tumour"]["lesions"]
    assert (lesions["n_true"], lesions["tp"], lesions["fn"], lesions["fp"]) == (8, 3, 5, 5)
    assert lesions["sensitivity"]["point"] == pytest.approx(3 / 8)  # not mean of 3/4 and 0
    assert lesions["fp_per_case"]["point"] == pytest.approx(2.5)


def test_worst_cases_are_the_lowest_dice_per_class() -> None:
    dice = [0.9, 0.2, 0.95, 0.5, 0.1, 0.7]
    cases = [record(f"c{i}", d) for i, d in enumerate(dice)]
    s = summarise_segmentation(cases, [f"P{i}" for i in range(6)], n_boot=50, k_worst=3)
    worst = s["worst_cases"]["tumour"]
    assert [w["case_id"] for w in worst] == ["c4", "c1", "c3"]
    assert [w["dice"] for w in worst] == [0.1, 0.2, 0.5]
    assert worst[0]["patient_id"] == "P4"


def test_summary_is_strict_json_even_when_a_metric_is_never_defined() -> None:
    cases = [record("a", 0.0, hd95=None, volumes=(1.0, 0.0)), record("b", 0.0, hd95=None)]
    s = summarise_segmentation(cases, ["A", "B"], n_boot=50)
    hd = s["per_class"]["tumour"]["metrics"]["hd95_mm"]
    assert hd["mean"] == {"point": None, "low": None, "high": None, "n_boot_valid": 0}
    assert s["per_class"]["tumour"]["lesions"] is None
    json.dumps(s, allow_nan=False)


def test_end_to_end_from_label_maps() -> None:
    rng = np.random.default_rng(0)
    labels = {1: "organ", 2: "nodule"}
    cases, ids = [], []
    for i in range(4):
        truth = np.zeros((16, 32, 32), dtype=np.int16)
        truth[2:14, 4:28, 4:28] = 1
        truth[6:9, 10:13, 10:13] = 2
        truth[10:12, 20:23, 20:23] = 2
        pred = truth.copy()
        pred[rng.random(truth.shape) < 0.05] = 1
        if i % 2:
            pred[pred == 2] = 1  # nodules missed
        cases.append(
            case_record(f"c{i}", pred, truth, (2.0, 0.8, 0.8), labels, lesion_classes=["nodule"])
        )
        ids.append(f"P{i // 2}")
    s = summarise_segmentation(json.loads(json.dumps(cases)), ids, n_boot=100)
    nodule = s["per_class"]["nodule"]
    assert nodule["lesions"]["n_true"] == 8
    assert nodule["lesions"]["tp"] == 4
    assert nodule["metrics"]["hd95_mm"]["n_undefined"] == 2
    assert s["per_class"]["organ"]["lesions"] is None
    json.dumps(s, allow_nan=False)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="no cases"):
        summarise_segmentation([], [])
    with pytest.raises(ValueError):
        summarise_segmentation([record("a", 0.5)], ["A", "B"])
    other = record("b", 0.5)
    other["metrics"] = {"organ": other["metrics"]["tumour"]}
    with pytest.raises(ValueError, match="same classes"):
        summarise_segmentation([record("a", 0.5), other], ["A", "B"])
    with pytest.raises(ValueError, match="not among labels"):
        case_record("a", np.zeros((2, 2, 2), int), np.zeros((2, 2, 2), int), (1, 1, 1),
                    {1: "organ"}, lesion_classes=["nodule"])  # fmt: skip
