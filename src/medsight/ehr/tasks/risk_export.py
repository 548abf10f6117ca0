"""ONNX export of a risk run's primary model (``RUN/model.onnx``).

The network takes the batch's tensors as separate named inputs (code, value_bin, value,
hours_before, delta_hours, mask, age_years, sex), with the batch and history dimensions
dynamic; the output is the logit ``(N,)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from medsight.ehr.tasks.risk_predict import LoadedRisk
from medsight.errors import InputError
from medsight.runs.atomic import atomic_path

ONNX_FILE = "model.onnx"
#: the batch's tensors in input order (`medsight.ehr.data.batches.collate`'s names)
INPUT_NAMES = (
    "code",
    "value_bin",
    "value",
    "hours_before",
    "delta_hours",
    "mask",
    "age_years",
    "sex",
)


class _Positional(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(INPUT_NAMES, tensors, strict=True)))


def _example() -> dict[str, torch.Tensor]:
    n, length = 2, 3
    return {
        "code": torch.ones(n, length, dtype=torch.int64),
        "value_bin": torch.zeros(n, length, dtype=torch.int64),
        "value": torch.zeros(n, length),
        "hours_before": torch.ones(n, length),
        "delta_hours": torch.zeros(n, length),
        "mask": torch.ones(n, length, dtype=torch.bool),
        "age_years": torch.full((n,), 60.0),
        "sex": torch.ones(n, dtype=torch.int64),
    }


def export_risk_run(run_dir: Path) -> Path:
    """Write ``RUN/model.onnx`` of the primary model; return its path.

    Raises:
        InputError: a K-fold ensemble (export one fold), or a network ONNX cannot express.
    """
    loaded = LoadedRisk(run_dir)
    if len(loaded.models) != 1:
        raise InputError(f"{run_dir}: a K-fold ensemble; export one fold's folder instead")
    wrapper = _Positional(loaded.models[0]).eval()
    example = _example()
    path = Path(run_dir) / ONNX_FILE
    dynamic = {name: {0: "batch", 1: "events"} for name in INPUT_NAMES[:6]}
    dynamic.update({"age_years": {0: "batch"}, "sex": {0: "batch"}, "logit": {0: "batch"}})
    try:
        with atomic_path(path) as tmp:
            torch.onnx.export(
                wrapper,
                tuple(example[n] for n in INPUT_NAMES),
                str(tmp),
                input_names=list(INPUT_NAMES),
                output_names=["logit"],
                dynamic_axes=dynamic,
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:  # torch's exporter raises many types for unsupported ops
        raise InputError(
            f"{run_dir}: ONNX export of {loaded.contract.model_name!r} is not supported yet "
            f"({exc.__class__.__name__}); the run serves from its safetensors weights"
        ) from None
    return path
