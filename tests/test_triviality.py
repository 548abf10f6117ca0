"""The demo task must not be solvable from global intensity statistics alone."""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from medsight.evaluate.classification.classification_metrics import macro_auc
from medsight.imaging.synth.chest_ct import CLASSES, CaseSpec, case_volume, plan_cohort

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)


def _features(spec: CaseSpec) -> np.ndarray:
    hu = case_volume(spec)[0].array
    return np.array([hu.mean(), hu.std(), *np.percentile(hu, PERCENTILES)])


@pytest.mark.slow  # synthesises and fits a whole cohort: about a minute on 2 cores
def test_logistic_regression_on_global_stats_stays_below_auc_075() -> None:
    specs = plan_cohort(150, seed=0)
    with ProcessPoolExecutor(max_workers=2) as pool:
        features = np.stack(list(pool.map(_features, specs, chunksize=10)))
    y = np.array([CLASSES.index(s.label) for s in specs])
    groups = np.array([s.identity.patient_id for s in specs])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    probs = cross_val_predict(model, features, y, groups=groups, cv=folds, method="predict_proba")
    auc = macro_auc(y, probs)
    print(f"baseline macro AUC on global intensity statistics: {auc:.3f}")
    assert auc < 0.75
