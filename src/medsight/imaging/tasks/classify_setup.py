"""Training settings of a classification run derived from its plan, then the user's overrides.

The plan (``plan.json``) decides what depends on the data: network family, spatial dims (2D
for one-slice images), depth, input size, batch; the user's options override, never the
other way round. The plan's augmentation (``plan.augment``) is read by the training loop
from the plan itself.
"""

from __future__ import annotations

from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_data import ClassificationData


def config_from_plan(prepared: ClassificationData, **overrides: object) -> TrainConfig:
    """Training settings: the plan's model, dims, depth and batch size, then the user's overrides.

    Raises:
        pydantic.ValidationError: an override is not a valid `TrainConfig` value.
    """
    plan = prepared.plan
    name = str(overrides.pop("model_name", None) or plan.model_name)
    values: dict[str, object] = {
        "model_name": name,
        "model_kwargs": {"depth": plan.network_depth} if name == "lungct-cnn" else {},
        "spatial_dims": plan.spatial_dims,
        "batch_size": plan.batch_size,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.model_validate(values)
