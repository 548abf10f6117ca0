"""ONNX export of a text-classify run's primary encoder with its heads (``RUN/model.onnx``).

Input ``input_ids`` ``(batch, tokens)`` int64, right-padded with 0 (the run's
``tokenizer.json`` makes them; notes cut at ``spec.max_tokens``); output ``logits``
``(batch, sum of class counts)``: the outputs' logits side by side in ``model.json``'s
output order. All three encoders export (the transformer's attention is written out, not
PyTorch's fused kernel).
"""

from __future__ import annotations

from pathlib import Path

import torch

from medsight.errors import InputError
from medsight.runs.atomic import atomic_path
from medsight.text.tasks.classify_predict import LoadedTextClassifier

ONNX_FILE = "model.onnx"


def export_text_classify(run_dir: Path) -> Path:
    """Write ``RUN/model.onnx`` of the primary model; return its path.

    Raises:
        InputError: a missing run, or a network ONNX cannot express.
    """
    loaded = LoadedTextClassifier(run_dir)
    example = torch.ones(2, 8, dtype=torch.int64)
    path = Path(run_dir) / ONNX_FILE
    try:
        with atomic_path(path) as tmp:
            torch.onnx.export(
                loaded.model,
                (example,),
                str(tmp),
                input_names=["input_ids"],
                output_names=["logits"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:  # torch's exporter raises many types for unsupported ops
        raise InputError(
            f"{run_dir}: ONNX export of {loaded.contract.model_name!r} failed "
            f"({exc.__class__.__name__}); the run serves from its safetensors weights"
        ) from None
    return path
