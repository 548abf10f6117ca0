"""A PyTorch model as an ONNX file, for fast CPU inference with ONNX Runtime.

The graph has one input ``image`` ``(batch, C, z, y, x)`` (or ``(batch, C, y, x)``) and one
output ``logits`` ``(batch, classes)``; only the batch axis is dynamic, the spatial size is
the example's (the preprocessing contract fixes it). Export uses the TorchScript-based
exporter (``dynamo=False``): the dynamo exporter needs onnxscript, and the TorchScript one
reproduces these CNNs' outputs to ~1e-7. The model is exported in eval mode (batch norm
with running statistics, no dropout); every module gets its train/eval mode back afterwards.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from medsight.runs.atomic import atomic_path

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "logits"


def _add_metadata(path: Path, metadata: Mapping[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def export_onnx(
    model: nn.Module,
    example_shape: Sequence[int],
    path: Path,
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``model`` as ONNX (opset 17, dynamic batch axis) to ``path``, atomically.

    Args:
        model: A classifier returning logits.
        example_shape: Input shape ``(N, C, ...)`` to trace with. Use N >= 2: with N = 1
            the tracer may bake the batch size into reshapes.
        path: Destination ``.onnx`` file; replaced only once the new one is whole.
        metadata: Strings stored in the file's ``metadata_props`` (see `OnnxPredictor`),
            e.g. a digest of the weights it was exported from.

    Returns:
        ``path``.

    Raises:
        ValueError: ``example_shape`` has fewer than 3 axes.
    """
    shape = tuple(int(s) for s in example_shape)
    if len(shape) < 3:
        raise ValueError(f"example_shape must be (N, C, *spatial), got {shape}")
    path = Path(path)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    example = torch.zeros(shape, dtype=torch.float32, device=device)
    # per module: a fine-tuning loop may keep some layers (frozen batch norms) in eval mode
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter announces its own deprecation on every call
            warnings.simplefilter("ignore", DeprecationWarning)
            # EfficientNet's padding slices cannot be folded; harmless, and not for users
            warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)
            # instance norm uses the input's own statistics in eval mode too: nothing differs
            warnings.filterwarnings("ignore", "ONNX export mode is set to", UserWarning)
            # shape checks traced as constants: the input is fixed but for the batch axis,
            # which is exported dynamic
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
            )
            if metadata:
                _add_metadata(tmp, metadata)
    finally:
        for module, training in modes.items():
            module.training = training
    return path
