import pytest
import torch

from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_fit import fit_classifier


@pytest.mark.slow  # two full fits, to compare their weights
def test_fit_learns_and_is_deterministic(toy) -> None:
    tx, ty = toy(36, 0)
    vx, vy = toy(12, 1)
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
