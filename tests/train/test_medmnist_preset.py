"""The MedMNIST v2 preset trains on an .npz archive and reports ACC/AUC on its test split."""

import json
from pathlib import Path

import numpy as np
import pytest

from medsight.imaging.models.checkpoint import load_checkpoint
from medsight.imaging.tasks.medmnist_run import PRESET, train_medmnist


def _archive(path: Path, colour: bool) -> Path:
    """A learnable 2-class MedMNIST-shaped set: class 1 has a bright square."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 64), ("val", 24), ("test", 24)):
        labels = np.arange(n) % 2
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        images[labels == 1, 8:18, 8:18] = 230
        if colour:
            images = np.repeat(images[..., None], 3, axis=-1)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels[:, None]
    np.savez(path, **arrays)
    return path


def test_preset_is_the_published_protocol() -> None:
    assert PRESET["model_name"] == "resnet18-small" and PRESET["batch_size"] == 128
    assert PRESET["learning_rate"] == 1e-3 and PRESET["schedule"] == "steps"


@pytest.mark.slow  # trains the preset end to end
def test_medmnist_preset_trains_and_tests(tmp_path: Path) -> None:
    for colour in (False, True):
        run = tmp_path / f"run_{colour}"
        metrics = train_medmnist(_archive(tmp_path / f"m{colour}.npz", colour), run, epochs=3)
        saved = json.loads((run / "metrics.json").read_text())
        assert saved["accuracy"] == metrics["accuracy"] and saved["macro_auc"] > 0.9
        model, contract = load_checkpoint(run)
        assert contract.spatial_dims == 2 and contract.in_channels == (3 if colour else 1)
