"""Segment new images with a trained run: preprocess, sliding window, back to the input grid.

`Segmenter` reads only what the run folder holds (``model.safetensors``, ``model.json``,
``postprocess.json``; or the ``fold_K`` members of ``ensemble.json``, averaged): the
contract's preprocessing is applied, the sliding window runs at the training patch size,
probabilities are resampled (trilinear) to the input's voxel grid
before the argmax (as nnU-Net does, so structures keep sub-voxel boundaries), and the
validation-chosen post-processing runs on the input grid. The label map holds the dataset's
label values and shares the input's geometry, so it can be written as NIfTI with the
input's affine or as DICOM SEG referencing the input's slices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medsight.errors import InputError
from medsight.imaging.inference.onnx_inference import OnnxPredictor
from medsight.imaging.inference.onnx_run import run_onnx
from medsight.imaging.inference.postprocess import apply_postprocess, read_postprocess
from medsight.imaging.inference.sliding_window import sliding_window_probabilities
from medsight.imaging.io.volume import Volume
from medsight.imaging.models.checkpoint import load_checkpoint
from medsight.imaging.preprocess.contract import apply_contract, background_value
from medsight.runs.ensemble import ensemble_members


@dataclass
class Segmentation:
    """A label map on the input's grid and its class names.

    ``indices`` holds channel indices (0 background, k = ``class_names[k]``), ``labels`` the
    dataset's label values (``label_values[k - 1]``).
    """

    indices: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    label_values: list[int]


class Segmenter:
    """A segmentation run, ready to segment volumes."""

    def __init__(
        self,
        run_dir: Path,
        overlap: float = 0.25,
        mirror: bool = False,
        bf16: bool = False,
        postprocess: bool = True,
        use_onnx: bool = True,
    ) -> None:
        """Load the run.

        Args:
            run_dir: the run folder.
            overlap: sliding-window overlap (0 to <1).
            mirror: left-right mirror test-time augmentation (two passes).
            bf16: bf16 autocast for the network (PyTorch; the exported ONNX model is fp32).
            postprocess: apply ``postprocess.json``'s rules.
            use_onnx: run the windows with ONNX Runtime (`run_onnx`: the run's
                ``model.onnx``, or the model exported on loading) when the run is one model
                and ``bf16`` is off; PyTorch otherwise.

        Raises:
            InputError: the run is missing, unreadable, or not a segmentation run, or its
                ``model.onnx`` is stale (see `open_run_onnx`).
        """
        self.run_dir = Path(run_dir)
        members = ensemble_members(self.run_dir)
        loaded = [load_checkpoint(m) for m in members] if members else [load_checkpoint(run_dir)]
        self.contract = loaded[0][1]
        # a segmentation contract always fixes its sliding window (patch_size)
        if self.contract.patch_size is None:
            raise InputError(f"{self.run_dir}: not a segmentation run (task {self.contract.task})")
        for _, other in loaded[1:]:
            if (other.class_names, other.preprocess, other.patch_size) != (
                self.contract.class_names,
                self.contract.preprocess,
                self.contract.patch_size,
            ):
                raise InputError(f"{self.run_dir}: ensemble members disagree on their contract")
        self.models = [
            m.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
            for m, _ in loaded
        ]
        self.model = self.models[0]
        self.overlap, self.mirror, self.bf16 = overlap, mirror, bf16
        self.rules = read_postprocess(self.run_dir) if postprocess else None
        onnx = run_onnx(self.run_dir) if use_onnx and not bf16 and not members else None
        self.onnx = onnx
        self.networks: list[nn.Module | Callable[[torch.Tensor], torch.Tensor]] = (
            [_onnx_logits(onnx)] if onnx is not None else list(self.models)
        )

    @property
    def class_names(self) -> list[str]:
        return list(self.contract.class_names)

    def background(self) -> float:
        return background_value(self.contract.preprocess)

    def probabilities(self, array: np.ndarray) -> torch.Tensor:
        """Per-class probabilities ``(classes, z, y, x)`` of a preprocessed array.

        A K-fold run averages its members' probabilities.
        """
        assert self.contract.patch_size is not None
        total = None
        for network in self.networks:
            probs = sliding_window_probabilities(
                network,
                array,
                self.contract.patch_size,
                len(self.contract.class_names),
                overlap=self.overlap,
                mirror_axes=(2,) if self.mirror else (),
                background=self.background(),
                bf16=self.bf16,
                channels_last=self.onnx is None,
            )
            total = probs if total is None else total + probs
        assert total is not None
        return total / len(self.networks)

    def indices(self, volume: Volume) -> np.ndarray:
        """Channel indices (uint8, 0 background) on ``volume``'s grid, post-processed."""
        if volume.channels != 1:
            raise InputError("colour images cannot be segmented")
        return self.on_grid(
            self.probabilities(apply_contract(volume, self.contract.preprocess)), volume
        )

    def on_grid(self, probs: torch.Tensor, volume: Volume) -> np.ndarray:
        """Channel indices on ``volume``'s grid from probabilities on the contract's grid."""
        if tuple(probs.shape[1:]) != volume.shape:
            probs = F.interpolate(
                probs[None], size=volume.shape, mode="trilinear", align_corners=False
            )[0]
        # numpy's argmax over the first axis is ~4x torch's here; both take the first maximum
        indices = probs.numpy().argmax(0).astype(np.uint8)
        if self.rules is not None:
            indices = apply_postprocess(indices, volume.spacing_mm, self.class_names, self.rules)
        return indices

    def segment(self, volume: Volume) -> Segmentation:
        """The label map of ``volume`` in its own geometry, with the dataset's label values."""
        return self.labelled(self.indices(volume))

    def labelled(self, indices: np.ndarray) -> Segmentation:
        """The `Segmentation` of channel ``indices`` (adds the dataset's label values)."""
        lookup = np.array([0, *self.contract.label_values], dtype=np.uint16)
        return Segmentation(
            indices, lookup[indices], self.class_names, list(self.contract.label_values)
        )


def _onnx_logits(onnx: OnnxPredictor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ONNX model as the sliding window calls a network: a tensor batch in, logits out."""

    def logits(batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(onnx.predict_logits(batch.numpy()))

    return logits
