"""Class probabilities for one series from a run folder, using only what the folder holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medsight.errors import InputError
from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.data.volume_loading import preprocess_image
from medsight.imaging.inference.onnx_inference import onnx_probabilities
from medsight.imaging.inference.onnx_run import open_run_onnx
from medsight.imaging.models.checkpoint import ModelContract, load_checkpoint
from medsight.runs.ensemble import ensemble_members


class Predictor:
    """Loads ``RUN_DIR``'s model(s) once; `predict` maps an input to probabilities.

    A run trained with ``--folds K`` lists its fold models in ``ensemble.json``; their
    probabilities are averaged.
    """

    def __init__(self, run_dir: Path, use_onnx: bool = True) -> None:
        members = ensemble_members(run_dir)
        # ONNX Runtime serves single-model runs that were exported (`medsight export --onnx`)
        self.onnx = open_run_onnx(run_dir) if use_onnx and not members else None
        loaded = [load_checkpoint(m) for m in members] if members else [load_checkpoint(run_dir)]
        self.models = [model for model, _ in loaded]
        self.contract = loaded[0][1]
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
            [predict_probabilities(m, batch, spatial_dims=dims) for m in self.models], axis=0
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
    """
    model.eval()
    out = []
    for start in range(0, len(arrays), batch_size):
        x = with_channel_axis(
            torch.from_numpy(np.asarray(arrays[start : start + batch_size], dtype=np.float32)),
            spatial_dims,
        )
        x = x.contiguous(
            memory_format=torch.channels_last_3d if x.ndim == 5 else torch.channels_last
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            probs = torch.softmax(model(x).float(), dim=1)
            if flip_tta:
                probs = (probs + torch.softmax(model(x.flip(-1)).float(), dim=1)) / 2
        out.append(probs.numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


__all__ = ["ModelContract", "Predictor", "predict_probabilities"]
