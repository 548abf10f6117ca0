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


def test_each_epochs_augmentation_is_recorded_and_replays(toy, tmp_path) -> None:
    import json

    import numpy as np

    from medsight.imaging.preprocess.augmentation import augment_preset, replay_batch

    tx, ty = toy(12, 0)
    vx, vy = toy(6, 1)
    spec = augment_preset("mr")
    cfg = TrainConfig(
        max_epochs=2,
        batch_size=4,
        seed=1,
        threads=1,
        model_kwargs={"depth": 2},
        augmentation=spec,
    )
    fit_classifier(tx, ty, vx, vy, 3, cfg, state_dir=tmp_path)
    epochs = sorted((tmp_path / "augmentation").iterdir())
    assert [p.name for p in epochs] == ["epoch_0001.json", "epoch_0002.json"]
    drawn = json.loads(epochs[1].read_text())
    assert drawn["spec"] == "mr"
    assert sorted(s["index"] for s in drawn["samples"]) == list(range(12))
    # the records alone reproduce a sample's augmented input, and differ from the original
    sample = drawn["samples"][0]
    x = torch.from_numpy(tx[sample["index"]][None, None])
    again = replay_batch(x, [sample["records"]])
    assert again.shape == x.shape and torch.equal(again, replay_batch(x, [sample["records"]]))
    assert not np.array_equal(again.numpy(), x.numpy())
