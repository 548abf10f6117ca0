"""Training settings of a classification run derived from its plan, then the user's overrides.

The plan (``plan.json``) decides what depends on the data: network family, depth, input
size, batch; the user's options override, never the other way round.
"""

from __future__ import annotations

from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_data import ClassificationData


def config_from_plan(prepared: ClassificationData, **overrides: object) -> TrainConfig:
    """Training settings: the plan's model, depth and batch size, then the user's overrides."""
    plan = prepared.plan
    name = str(overrides.pop("model_name", None) or plan.model_name)
    values: dict[str, object] = {
        "model_name": name,
        "model_kwargs": {"depth": plan.network_depth} if name == "lungct-cnn" else {},
        "batch_size": plan.batch_size,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.model_validate(values)
