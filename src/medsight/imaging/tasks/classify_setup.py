"""Training settings of a classification run derived from its plan, then the user's overrides.

The plan (``plan.json``) decides what depends on the data: network family, spatial dims (2D
for one-slice images), depth, batch and augmentation (the input size is the plan's
preprocessing contract); the user's options override, never the other way round.
"""

from __future__ import annotations

from medsight.imaging.preprocess.plan import Plan
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_data import ClassificationData


def config_from_plan(prepared: ClassificationData, **overrides: object) -> TrainConfig:
    """The plan's model, dims, depth, batch size and augmentation, then the user's overrides.

    Raises:
        pydantic.ValidationError: an override is not a valid `TrainConfig` value.
    """
    return config_for_plan(prepared.plan, **overrides)


def config_for_plan(plan: Plan, **overrides: object) -> TrainConfig:
    """`config_from_plan` from the plan alone (before any data is cached)."""
    name = str(overrides.pop("model_name", None) or plan.model_name)
    values: dict[str, object] = {
        "model_name": name,
        "model_kwargs": (
            {"depth": plan.network_depth, **plan.model_kwargs} if name == "lungct-cnn" else {}
        ),
        "spatial_dims": plan.spatial_dims,
        "batch_size": plan.batch_size,
        "augmentation": plan.augment,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.model_validate(values)
