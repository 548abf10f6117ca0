"""ONNX export of a tagger run's emission network (``RUN/model.onnx``).

The graph takes one chunk of a note (``words, shapes (1, T)``, ``chars (1, T, C)`` int64, the
token axis dynamic, no padding) and returns the emissions ``(1, T, K)``; CRF decoding stays
in Python (`CRF.viterbi` on the run's ``transitions``), since a dynamic-programming loop over
tokens is not what ONNX runtimes are fast at and the emissions are the network's cost.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from medsight.errors import InputError
from medsight.runs.atomic import atomic_path
from medsight.text.tasks.ner_weights import load_tagger

ONNX_FILE = "model.onnx"
INPUT_NAMES = ("words", "shapes", "chars")


class _Emissions(nn.Module):
    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(
        self, words: torch.Tensor, shapes: torch.Tensor, chars: torch.Tensor
    ) -> torch.Tensor:
        mask = torch.ones_like(words, dtype=torch.bool)
        return self.network({"words": words, "shapes": shapes, "chars": chars, "mask": mask})


def export_ner_run(run_dir: Path) -> Path:
    """Write ``RUN/model.onnx`` (the emission network); return its path.

    Raises:
        InputError: a missing run, or a network the exporter cannot express.
    """
    tagger = load_tagger(run_dir)
    wrapper = _Emissions(tagger.network).eval()
    length, width = 7, tagger.sizes.char_width
    example = (
        torch.ones(1, length, dtype=torch.int64),
        torch.ones(1, length, dtype=torch.int64),
        torch.ones(1, length, width, dtype=torch.int64),
    )
    path = Path(run_dir) / ONNX_FILE
    dynamic = {"words": {1: "tokens"}, "shapes": {1: "tokens"}, "chars": {1: "tokens"}}
    dynamic["emissions"] = {1: "tokens"}
    try:
        with atomic_path(path) as tmp:
            torch.onnx.export(
                wrapper,
                example,
                str(tmp),
                input_names=list(INPUT_NAMES),
                output_names=["emissions"],
                dynamic_axes=dynamic,
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:  # torch's exporter raises many types for unsupported ops
        raise InputError(
            f"{run_dir}: ONNX export of {tagger.network.network!r} failed "
            f"({exc.__class__.__name__}); the run serves from its safetensors weights"
        ) from None
    return path
