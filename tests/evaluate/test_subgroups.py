import json

import numpy as np
import pytest

from medsight.evaluate.classification.subgroups import age_band_names, age_bands, subgroup_metrics

NAMES = ["normal", "benign", "malignant"]


@pytest.fixture
def cohort() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n_patients = 90
    per_patient = rng.integers(1, 3, size=n_patients)
    patients = np.repeat(np.arange(n_patients), per_patient)
    y = rng.integers(0, 3, size=n_patients)[patients]
    logits = rng.normal(size=(len(y), 3)) + 1.5 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    sex = rng.choice(["F", "M"], size=n_patients).astype(object)
    sex[:3] = ""  # three patients of unknown sex: a subgroup too small for metrics
    age = rng.uniform(30, 90, size=n_patients)
    age[3] = np.nan
    return {
        "y": y,
        "probs": probs,
        "ids": np.array([f"P{p}" for p in patients]),
        "sex": sex[patients],
        "age": age[patients],
    }


def _by_sex_and_age(cohort: dict[str, np.ndarray]) -> dict:
    return subgroup_metrics(
        cohort["y"],
        cohort["probs"],
        cohort["ids"],
        NAMES,
        sex=cohort["sex"],
        age=cohort["age"],
        n_boot=100,
    )


def test_default_age_bands() -> None:
    assert age_band_names() == ["<50", "50-64", "65-74", ">=75"]
    ages = [12.0, 49.9, 50.0, 64.9, 65.0, 74.99, 75.0, np.nan, None]
    bands = ["<50", "<50", "50-64", "50-64", "65-74", "65-74", ">=75", "unknown", "unknown"]
    assert age_bands(ages) == bands
    assert age_band_names([40.5, 60]) == ["<40.5", "40.5-<60", ">=60"]
    with pytest.raises(ValueError, match="increasing"):
        age_band_names([65, 50])


def test_subgroup_counts_add_up(cohort: dict[str, np.ndarray]) -> None:
    result = _by_sex_and_age(cohort)
    assert json.loads(json.dumps(result)) == result
    n = len(cohort["y"])
    assert list(result["by_sex"]) == ["F", "M", "unknown"]
    assert list(result["by_age"]) == ["<50", "50-64", "65-74", ">=75", "unknown"]
    for table in (result["by_sex"], result["by_age"]):
        assert sum(group["n_cases"] for group in table.values()) == n
        for group in table.values():
            assert sum(group["class_counts"].values()) == group["n_cases"]
    for name in NAMES:
        total = sum(g["class_counts"][name] for g in result["by_sex"].values())
        assert total == int((cohort["y"] == NAMES.index(name)).sum())


def test_small_subgroups_report_counts_and_a_reason(cohort: dict[str, np.ndarray]) -> None:
    result = _by_sex_and_age(cohort)
    unknown_sex = result["by_sex"]["unknown"]
    assert 0 < unknown_sex["n_cases"] < 10
    assert unknown_sex["metrics"] is None
    assert "fewer than 10" in unknown_sex["reason"]
    female = result["by_sex"]["F"]
    assert female["reason"] is None
    assert female["metrics"]["n_cases"] == female["n_cases"]
    assert female["metrics"]["n_patients"] == female["n_patients"]
    ci = female["metrics"]["overall"]["accuracy"]
    assert ci["low"] <= ci["point"] <= ci["high"]


def test_a_subgroup_missing_a_class_gets_no_metrics(cohort: dict[str, np.ndarray]) -> None:
    y = cohort["y"].copy()
    older = np.nan_to_num(cohort["age"], nan=0.0) >= 75
    y[older & (y == 2)] = 1
    result = subgroup_metrics(
        y, cohort["probs"], cohort["ids"], NAMES, age=cohort["age"], n_boot=50
    )
    group = result["by_age"][">=75"]
    assert group["n_cases"] >= 10
    assert group["metrics"] is None
    assert group["reason"] == "no case of class malignant"
    assert result["by_sex"] is None


def test_attribute_length_must_match(cohort: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="sex values"):
        subgroup_metrics(
            cohort["y"], cohort["probs"], cohort["ids"], NAMES, sex=cohort["sex"][:-1], n_boot=10
        )
