import numpy as np
import torch

from medsight.train.classifier_fit import fit_classifier
from medsight.train.config import TrainConfig


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class = where a bright cube sits (none, left, right): learnable in a few steps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.2, 0.05, (n, 32, 32, 32)).astype(np.float32)
    y = np.arange(n) % 3
    for i, label in enumerate(y):
        if label:
            c = 8 if label == 1 else 22
            x[i, 12:20, 12:20, c - 3 : c + 3] = 1.0
    return x, y


def test_fit_learns_and_is_deterministic() -> None:
    tx, ty = _toy(36, 0)
    vx, vy = _toy(12, 1)
    cfg = TrainConfig(
        max_epochs=4, batch_size=6, learning_rate=1e-3, seed=3, patience=10, threads=1
    )
    a = fit_classifier(tx, ty, vx, vy, 3, cfg)
    b = fit_classifier(tx, ty, vx, vy, 3, cfg)
    assert len(a.history) == 4
    assert a.history[-1]["train_loss"] < a.history[0]["train_loss"]
    assert [r["val_auc"] for r in a.history] == [r["val_auc"] for r in b.history]
    for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    assert 1 <= a.best_epoch <= 4
