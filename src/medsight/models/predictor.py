"""Class probabilities for one series from a run folder, using only what the folder holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medsight.io.dicom_series import read_dicom_series
from medsight.models.checkpoint import ModelContract, load_checkpoint
from medsight.preprocess.contract import apply_contract


class Predictor:
    """Loads ``RUN_DIR``'s model once; `predict` maps a series folder to probabilities."""

    def __init__(self, run_dir: Path) -> None:
        self.model, self.contract = load_checkpoint(run_dir)

    @property
    def class_names(self) -> list[str]:
        return list(self.contract.class_names)

    def predict_array(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, classes)`` for preprocessed arrays ``(N, z, y, x)``."""
        return predict_probabilities(self.model, batch)

    def predict(self, series: Path) -> dict[str, float]:
        """``{class_name: probability}`` for the DICOM series at ``series``.

        Raises:
            InputError: the series cannot be read (see `read_dicom_series`).
        """
        array = apply_contract(read_dicom_series(series), self.contract.preprocess)
        probs = self.predict_array(array[None])[0]
        return {name: float(p) for name, p in zip(self.class_names, probs, strict=True)}


@torch.inference_mode()
def predict_probabilities(
    model: torch.nn.Module, arrays: np.ndarray, batch_size: int = 8, bf16: bool = False
) -> np.ndarray:
    """Softmax outputs of ``model`` (eval mode) for ``arrays`` ``(N, z, y, x)``, in float32."""
    model.eval()
    out = []
    for start in range(0, len(arrays), batch_size):
        x = torch.from_numpy(np.asarray(arrays[start : start + batch_size], dtype=np.float32))[
            :, None
        ]
        x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        out.append(torch.softmax(logits.float(), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


__all__ = ["ModelContract", "Predictor", "predict_probabilities"]
