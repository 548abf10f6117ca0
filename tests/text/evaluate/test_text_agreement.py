"""Per-finding agreement: confusion, accuracy, kappa, F1 by hand; bootstrap CIs bracket."""

from __future__ import annotations

import pytest

from medsight.text.evaluate.agreement_per_finding import agreement_per_finding, report_label


def test_counts_and_metrics_by_hand() -> None:
    # 4 reports, one finding. reference: P, P, A, (none); ours: P, U, A, P
    reference = {
        "r1": {"effusion": "definitely present"},
        "r2": {"effusion": "definitely present"},
        "r3": {"effusion": "definitely absent"},
        "r4": {},
    }
    ours = {
        "r1": {"effusion": "present"},
        "r2": {"effusion": "uncertain"},
        "r3": {"effusion": "absent"},
        "r4": {"effusion": "present"},
    }
    result = agreement_per_finding(ours, reference, n_boot=200, seed=1)
    row = result["findings"]["effusion"]
    assert row["confusion"] == [[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert row["reference_counts"] == {
        "present": 2,
        "absent": 1,
        "uncertain": 0,
        "not mentioned": 1,
    }
    assert row["accuracy"]["point"] == pytest.approx(0.5)
    assert row["accuracy_mentioned"]["point"] == pytest.approx(2 / 3)
    # kappa: po = 0.5; pe = (2*2 + 1*1 + 0*1 + 1*0) / 16 = 5/16
    assert row["kappa"]["point"] == pytest.approx((0.5 - 5 / 16) / (1 - 5 / 16))
    # present: tp 1, reference 2, ours 2 -> F1 0.5; absent: 1/1 -> 1.0; uncertain: 0
    assert row["f1_present"]["point"] == pytest.approx(0.5)
    assert row["f1_absent"]["point"] == pytest.approx(1.0)
    assert row["f1_uncertain"]["point"] == 0.0
    # present or uncertain: reference {r1, r2}, ours {r1, r2, r4} -> 2 * 2 / (2 + 3)
    assert row["f1_present_or_uncertain"]["point"] == pytest.approx(0.8)
    ci = row["accuracy"]
    assert ci["low"] <= ci["point"] <= ci["high"] and ci["n_boot_valid"] == 200
    assert result["overall"]["confusion"] == row["confusion"]


def test_perfect_agreement_and_undefined_metrics() -> None:
    labels = {f"r{i}": ({"pneumothorax": "absent"} if i % 2 else {}) for i in range(10)}
    result = agreement_per_finding(labels, labels, n_boot=50)
    row = result["findings"]["pneumothorax"]
    assert row["kappa"] == {"point": 1.0, "low": 1.0, "high": 1.0, "n_boot_valid": 50}
    assert row["f1_present"]["point"] is None  # nobody says present
    assert result["ci_method"].endswith("resampling reports with replacement")


def test_missing_report_and_unknown_label_are_refused() -> None:
    with pytest.raises(ValueError, match="have no labels of ours"):
        agreement_per_finding({}, {"r1": {}}, n_boot=10)
    with pytest.raises(ValueError, match="r1 x: unknown report label"):
        agreement_per_finding({"r1": {"x": "maybe"}}, {"r1": {}}, n_boot=10)
    assert report_label("Definitely Present", "here") == "present"
