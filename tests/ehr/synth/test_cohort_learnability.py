"""The default task is learnable but not trivial, and trajectories carry the signal.

On the MEDS variant (5,000 patients, seed 0) the label is computed here (first outcome code
within 365 days after the prediction date, patients with data before it and no outcome
before it), then two logistic regressions are cross-validated: one on last values, one that
also sees trajectories (HbA1c and eGFR slopes, blood-pressure variability, refill gaps,
recent admissions and ED visits); the simulation's hidden hazard over the window bounds
what any model can reach.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from medsight.ehr.io.meds_dataset import open_meds
from medsight.ehr.synth import OUTCOME_PREFIXES, OUTCOME_WINDOW_DAYS, PREDICTION_DATE
from medsight.ehr.synth.diabetes_cohort import iter_cohort
from medsight.ehr.synth.formats import write_synthetic_ehr

DAY = np.timedelta64(1, "D")


class _Cohort:
    """The events before the prediction time, as numpy arrays sorted by subject and time."""

    def __init__(self, root: Path) -> None:
        dataset = open_meds(root)
        table = pa.concat_tables(dataset.read_shard(p) for p in dataset.shard_paths())
        subject = table.column("subject_id").to_numpy()
        time = table.column("time").to_numpy(zero_copy_only=False).astype("datetime64[us]")
        code = table.column("code").to_numpy(zero_copy_only=False).astype(str)
        value = table.column("numeric_value").to_numpy(zero_copy_only=False).astype(float)
        order = np.lexsort((time, subject))
        self.ids, inverse = np.unique(subject[order], return_inverse=True)
        self.n = len(self.ids)
        self.patient, self.time, self.code, self.value = (
            inverse,
            time[order],
            code[order],
            value[order],
        )
        self.t0 = np.datetime64(PREDICTION_DATE, "us")

    def label(self) -> tuple[np.ndarray, np.ndarray]:
        """(eligible, positive) per patient for the default task."""
        timed = ~np.isnat(self.time)
        outcome = timed & np.char.startswith(self.code, OUTCOME_PREFIXES[0])
        for prefix in OUTCOME_PREFIXES[1:]:
            outcome |= timed & np.char.startswith(self.code, prefix)
        first = np.full(self.n, np.datetime64("2100-01-01", "us"))
        np.minimum.at(first, self.patient[outcome], self.time[outcome])
        clinical = timed & (self.code != "MEDS_BIRTH") & (self.time <= self.t0)
        history = np.zeros(self.n, bool)
        history[self.patient[clinical]] = True
        dead = timed & (self.code == "MEDS_DEATH") & (self.time <= self.t0)
        alive = np.ones(self.n, bool)
        alive[self.patient[dead]] = False
        eligible = history & alive & (first > self.t0)
        positive = eligible & (first <= self.t0 + OUTCOME_WINDOW_DAYS * DAY)
        return eligible, positive

    def _rows(self, codes: tuple[str, ...], days: int | None = None):
        keep = ~np.isnat(self.time) & (self.time <= self.t0) & np.isin(self.code, codes)
        if days is not None:
            keep &= self.time > self.t0 - days * DAY
        return self.patient[keep], self.time[keep], self.value[keep], self.code[keep]

    def last(self, code: str) -> np.ndarray:
        p, _, v, _ = self._rows((code,))
        out = np.full(self.n, np.nan)
        out[p] = v  # rows are time-sorted: the last write wins
        return out

    def slope(self, code: str, days: int = 1095) -> np.ndarray:
        """Least-squares slope per year over the window (>= 3 values, spread out)."""
        p, t, v, _ = self._rows((code,), days)
        x = (t - self.t0) / (365 * DAY)
        n = np.bincount(p, minlength=self.n)
        sx, sy = np.bincount(p, x, self.n), np.bincount(p, v, self.n)
        sxx, sxy = np.bincount(p, x * x, self.n), np.bincount(p, x * v, self.n)
        den = n * sxx - sx**2
        ok = (n >= 3) & (den > 0.05 * n * n)
        out = np.full(self.n, np.nan)
        out[ok] = (n * sxy - sx * sy)[ok] / den[ok]
        return out

    def spread(self, code: str, days: int = 1095) -> np.ndarray:
        p, _, v, _ = self._rows((code,), days)
        n = np.bincount(p, minlength=self.n)
        mean = np.bincount(p, v, self.n) / np.maximum(n, 1)
        var = np.bincount(p, v * v, self.n) / np.maximum(n, 1) - mean**2
        return np.where(n >= 2, np.sqrt(np.maximum(var, 0)), np.nan)

    def count(self, code: str, days: int) -> np.ndarray:
        p, *_ = self._rows((code,), days)
        return np.bincount(p, minlength=self.n).astype(float)

    def refill_delay_days(self, days: int) -> np.ndarray:
        """Days refills of each drug came later than their 60-day supply, summed."""
        drugs = ("ATC//A10BA02", "ATC//A10AE04", "ATC//A10BK01", "ATC//C09AA05", "ATC//C10AA05")
        p, t, _, c = self._rows(drugs, days)
        order = np.lexsort((t, c, p))
        p, t, c = p[order], t[order], c[order]
        gap = np.diff(t) / DAY
        same = (np.diff(p) == 0) & (c[1:] == c[:-1])
        out = np.zeros(self.n)
        np.add.at(out, p[1:], np.where(same, np.maximum(gap - 70, 0), 0))
        return out


def _design(columns: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    x = np.column_stack(columns)[rows]
    missing = np.isnan(x)
    x = np.where(missing, np.nanmedian(x, axis=0), x)
    return np.column_stack([x, missing[:, missing.any(axis=0)]])


def _cv_auroc(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    score = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, score))


def _window_hazard(patients: int, seed: int) -> np.ndarray:
    """The hidden hazard summed over the outcome window's twelve months, per subject id - 1."""
    month = int((np.datetime64(PREDICTION_DATE, "M") - np.datetime64("2018-01", "M")).astype(int))
    return np.concatenate(
        [
            chunk.monthly_hazard[:, month : month + 12].sum(axis=1)
            for chunk in iter_cohort(patients, seed)
        ]
    )


def test_last_values_learn_something_and_trajectories_learn_more(tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    patients = 5000
    cohort = _Cohort(write_synthetic_ehr(tmp_path / "meds", patients, 0, "meds"))
    eligible, positive = cohort.label()
    y = positive[eligible]
    rate = y.mean()
    outcome = np.logical_or.reduce([np.char.startswith(cohort.code, p) for p in OUTCOME_PREFIXES])
    before = np.zeros(cohort.n, bool)
    before[cohort.patient[outcome & (cohort.time <= cohort.t0)]] = True
    birth = cohort.time[cohort.code == "MEDS_BIRTH"]
    age = (cohort.t0 - birth) / (365.25 * DAY)
    female = np.zeros(cohort.n)
    female[cohort.patient[cohort.code == "SEX//F"]] = 1
    labs = ("LOINC//4548-4", "LOINC//33914-3", "LOINC//8480-6", "LOINC//8462-4")
    last = [cohort.last(c) for c in (*labs, "LOINC//13457-7", "LOINC//39156-5", "LOINC//9318-7")]
    last += [age, female]
    trajectories = [
        cohort.slope("LOINC//4548-4"),
        cohort.slope("LOINC//4548-4", 730),
        cohort.slope("LOINC//33914-3"),
        cohort.spread("LOINC//8480-6"),
        cohort.refill_delay_days(365),
        cohort.refill_delay_days(1095),
        cohort.count("ENCOUNTER//inpatient", 365),
        cohort.count("ENCOUNTER//emergency", 365),
        cohort.count("ENCOUNTER//ambulatory", 365),
    ]
    last_auroc = _cv_auroc(_design(last, eligible), y)
    trajectory_auroc = _cv_auroc(_design(last + trajectories, eligible), y)
    oracle_auroc = float(roc_auc_score(y, _window_hazard(patients, 0)[cohort.ids[eligible] - 1]))
    print(
        f"\noutcome before {before.mean():.1%}; eligible {eligible.sum()} ({eligible.mean():.1%}), "
        f"positive {y.sum()} ({rate:.1%}); AUROC last values {last_auroc:.3f}, with "
        f"trajectories {trajectory_auroc:.3f}, hidden hazard {oracle_auroc:.3f}"
    )
    # seed 0 measured: 19.5% before, 72.6% eligible, 20.4% positive, 0.635 / 0.820 / 0.902
    assert before.mean() < 0.22
    assert eligible.mean() > 0.65
    assert 0.15 < rate < 0.30
    assert 0.60 < last_auroc < 0.72
    assert 0.76 < trajectory_auroc < 0.88
    assert trajectory_auroc > last_auroc + 0.10
    assert 0.84 < oracle_auroc < 0.93


@pytest.mark.parametrize("seed", [1])
def test_the_prediction_date_splits_the_outcomes(tmp_path: Path, seed: int) -> None:
    cohort = _Cohort(write_synthetic_ehr(tmp_path / "meds", 800, seed, "meds"))
    eligible, positive = cohort.label()
    outcome = np.logical_or.reduce([np.char.startswith(cohort.code, p) for p in OUTCOME_PREFIXES])
    assert (cohort.time[outcome] <= cohort.t0).any()  # some before the prediction date...
    assert positive.sum() > 0  # ...some within the window after it
    assert eligible.sum() > 0.6 * cohort.n
