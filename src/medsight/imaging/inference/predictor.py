"""Class probabilities for one series from a run folder, using only what the folder holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medsight.errors import InputError
from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.data.volume_loading import preprocess_image
from medsight.imaging.inference.onnx_inference import onnx_probabilities
from medsight.imaging.inference.onnx_run import run_onnx
from medsight.imaging.models.checkpoint import ModelContract, load_checkpoint
from medsight.runs.ensemble import ensemble_members


class Predictor:
    """Loads ``RUN_DIR``'s model(s) once; `predict` maps an input to probabilities.

    A run trained with ``--folds K`` lists its fold models in ``ensemble.json``; their
    probabilities are averaged. A single model runs with ONNX Runtime (`run_onnx`) unless
    ``use_onnx`` is off or ``bf16`` is asked for (PyTorch bf16 autocast; measured slower
    than fp32 for `lungct-cnn` even on a CPU with native bf16, so ``--precision auto``
    should not pick it for classification).
    """

    def __init__(self, run_dir: Path, use_onnx: bool = True, bf16: bool = False) -> None:
        self.run_dir = Path(run_dir)
        members = ensemble_members(run_dir)
        # ONNX Runtime serves single-model runs (their model.onnx, or exported on loading)
        self.bf16 = bf16
        self.onnx = run_onnx(run_dir) if use_onnx and not bf16 and not members else None
        loaded = [load_checkpoint(m) for m in members] if members else [load_checkpoint(run_dir)]
        self.contract = loaded[0][1]
        # once here rather than per batch: the input is made channels_last in
        # `predict_probabilities`, and oneDNN is fastest when weights match it
        memory_format = (
            torch.channels_last_3d if self.contract.spatial_dims == 3 else torch.channels_last
        )
        self.models = [model.to(memory_format=memory_format) for model, _ in loaded]  # type: ignore[call-overload]
        if any(c.preprocess != self.contract.preprocess for _, c in loaded):
            raise InputError(f"{run_dir}: ensemble members disagree on preprocessing")

    @property
    def model(self) -> torch.nn.Module:
        """The first (or only) model."""
        return self.models[0]

    @property
    def class_names(self) -> list[str]:
        return list(self.contract.class_names)

    def predict_array(self, batch: np.ndarray | CachedVolumes) -> np.ndarray:
        """Probabilities ``(N, classes)`` for preprocessed arrays ``(N, z, y, x)``."""
        if self.onnx is not None:
            return onnx_probabilities(self.onnx, batch)
        dims = self.contract.spatial_dims
        return np.mean(
            [
                predict_probabilities(m, batch, bf16=self.bf16, spatial_dims=dims)
                for m in self.models
            ],
            axis=0,
        )

    def predict(self, series: Path) -> dict[str, float]:
        """``{class_name: probability}`` for the image or DICOM series at ``series``.

        Raises:
            InputError: the input cannot be read (see `read_image`).
        """
        array = preprocess_image(series, self.contract.preprocess)
        probs = self.predict_array(array[None])[0]
        return {name: float(p) for name, p in zip(self.class_names, probs, strict=True)}


def with_channel_axis(batch: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """``(N, *spatial)`` gets a channel axis; ``(N, C, *spatial)`` is returned as it is."""
    return batch[:, None] if batch.ndim == spatial_dims + 1 else batch


@torch.inference_mode()
def predict_probabilities(
    model: torch.nn.Module,
    arrays: np.ndarray | CachedVolumes,
    batch_size: int = 8,
    bf16: bool = False,
    flip_tta: bool = True,
    spatial_dims: int = 3,
) -> np.ndarray:
    """Softmax outputs of ``model`` (eval mode) for ``arrays`` ``(N, z, y, x)``, in float32.

    With ``flip_tta`` the probabilities are averaged with those of the left-right mirrored
    input (the flip training augments with), which steadies the ranking of borderline cases.
    The mirrored inputs run in the same forward pass as the originals: one batch of ``2N``
    rather than two of ``N``. For a single series that matters most: PyTorch sends a 3D
    convolution with batch 1 and few channels to its slow reference kernel, and a batch of
    two to oneDNN (5x faster for `lungct-cnn` here).
    """
    model.eval()
    out = []
    for start in range(0, len(arrays), batch_size):
        x = with_channel_axis(
            torch.from_numpy(np.asarray(arrays[start : start + batch_size], dtype=np.float32)),
            spatial_dims,
        )
        n = len(x)
        if flip_tta:
            x = torch.cat([x, x.flip(-1)])
        x = x.contiguous(
            memory_format=torch.channels_last_3d if x.ndim == 5 else torch.channels_last
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            probs = torch.softmax(model(x).float(), dim=1)
        if flip_tta:
            probs = (probs[:n] + probs[n:]) / 2
        out.append(probs.numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


__all__ = ["ModelContract", "Predictor", "predict_probabilities"]
