"""The EHR baselines every risk run trains beside its sequence models: logistic regression on
last values and counts, LightGBM on windowed aggregates (features, models, train/load/score).

May import the engine, `medsight.errors`, `medsight.console` and the rest of `medsight.ehr`.
"""

from medsight.ehr.baselines.train_baselines import (
    load_baselines,
    score_baselines,
    train_baselines,
)

__all__ = ["load_baselines", "score_baselines", "train_baselines"]
