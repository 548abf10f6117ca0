"""The engine's K-fold driver: fold folders, ensemble.json, cv_metrics.json, out-of-fold order."""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medsight.runs.ensemble import ensemble_members
from medsight.train.cross_validation import Fold, cross_validate


def test_folds_train_on_the_rest_and_pool_out_of_fold_in_development_order(
    tmp_path: Path,
) -> None:
    development = np.array([0, 2, 3, 5, 7, 8])
    folds = np.array([1, 0, 2, 1, 0, 2])
    seen: list[Fold] = []

    def fit_fold(fold: Fold) -> list[int]:
        seen.append(fold)
        fold.run_dir.mkdir(parents=True)
        (fold.run_dir / "model.safetensors").write_bytes(b"")
        return [int(i) * 10 for i in fold.held]

    def score_fold(held: np.ndarray, outcomes: Sequence[int]) -> dict[str, object]:
        return {"held": held.tolist(), "outcomes": list(outcomes)}

    def score_pooled(indices: np.ndarray, outcomes: Sequence[int]) -> dict[str, object]:
        return {"pooled": [indices.tolist(), list(outcomes)]}

    ids = [f"case{i}" for i in development]
    result = cross_validate(
        tmp_path, development, folds, 3, ids, fit_fold, score_fold, score_pooled
    )

    assert [f.number for f in seen] == [1, 2, 3]
    for fold in seen:
        assert sorted([*fold.kept, *fold.held]) == development.tolist()
        assert not set(fold.kept) & set(fold.held)
    assert seen[0].held.tolist() == [2, 7]
    saved = json.loads((tmp_path / "cv_metrics.json").read_text())
    assert saved == result
    assert list(saved) == ["folds", "pooled", "fold_of_case"]
    assert saved["folds"][0] == {"fold": 1, "cases": 2, "held": [2, 7], "outcomes": [20, 70]}
    assert saved["pooled"] == [development.tolist(), [i * 10 for i in development]]
    assert saved["fold_of_case"] == dict(zip(ids, [2, 1, 3, 2, 1, 3], strict=True))
    assert ensemble_members(tmp_path) == [tmp_path / f"fold_{n}" for n in (1, 2, 3)]
