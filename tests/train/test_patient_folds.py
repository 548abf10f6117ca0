from pathlib import Path

import pytest
import torch

from medsight.errors import InputError
from medsight.imaging.data.manifest import Case
from medsight.imaging.data.patient_split import patient_folds
from medsight.imaging.synth.chest_ct import plan_cohort
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_fit import fit_classifier, lr_factor


class Killed(Exception):
    pass


def test_resume_after_a_kill_gives_the_uninterrupted_weights(tmp_path: Path, toy) -> None:
    tx, ty = toy(24, 0)
    vx, vy = toy(9, 1)
    cfg = TrainConfig(
        max_epochs=4, batch_size=6, seed=5, patience=10, threads=1, model_kwargs={"depth": 3}
    )
    whole = fit_classifier(tx, ty, vx, vy, 3, cfg, state_dir=tmp_path / "whole")

    def kill_after_two(row: dict[str, float]) -> None:
        if row["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        fit_classifier(tx, ty, vx, vy, 3, cfg, on_epoch=kill_after_two, state_dir=tmp_path / "cut")
    resumed = fit_classifier(tx, ty, vx, vy, 3, cfg, state_dir=tmp_path / "cut", resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]
    assert resumed.best_epoch == whole.best_epoch
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_resume_without_state_is_a_clear_error(tmp_path: Path, toy) -> None:
    tx, ty = toy(6, 0)
    cfg = TrainConfig(max_epochs=1, threads=1, model_kwargs={"depth": 3})
    with pytest.raises(InputError, match="nothing to resume"):
        fit_classifier(tx, ty, tx, ty, 3, cfg, state_dir=tmp_path, resume=True)


@pytest.mark.parametrize("schedule", ["cosine", "steps", "constant"])
def test_lr_schedules_are_closed_form(schedule: str) -> None:
    cfg = TrainConfig(max_epochs=8, schedule=schedule)
    factors = [lr_factor(cfg, e) for e in range(9)]
    assert factors[0] == 1.0
    if schedule == "steps":  # MedMNIST v2: x0.1 at 50% and 75% of the epochs
        assert (
            factors[3] == 1.0
            and factors[4] == pytest.approx(0.1)
            and factors[6] == pytest.approx(0.01)
        )
    elif schedule == "cosine":
        assert factors[8] == pytest.approx(0.0) and factors[4] == pytest.approx(0.5)


def _cases() -> list[Case]:
    return [
        Case(s.case_id, s.identity.patient_id, s.label, Path(s.case_id))
        for s in plan_cohort(200, 0)
    ]


@pytest.mark.parametrize("k", [3, 5])
def test_kfold_never_puts_one_patient_in_two_folds(k: int) -> None:
    cases = _cases()
    folds = patient_folds(cases, k, seed=0)
    fold_of: dict[str, set[int]] = {}
    for case, fold in zip(cases, folds, strict=True):
        fold_of.setdefault(case.patient_id, set()).add(fold)
    assert all(len(f) == 1 for f in fold_of.values())
    assert set(folds) == set(range(k))
    for fold in range(k):
        labels = {c.label for c, f in zip(cases, folds, strict=True) if f == fold}
        assert labels == {"normal", "benign", "malignant"}


def test_fewer_patients_than_folds_is_refused() -> None:
    cases = _cases()[:6]
    with pytest.raises(InputError, match="patient"):
        patient_folds(cases, 10, seed=0)


def test_resume_with_other_settings_is_refused(tmp_path: Path, toy) -> None:
    tx, ty = toy(12, 0)
    cfg = TrainConfig(max_epochs=2, batch_size=6, threads=1, model_kwargs={"depth": 3})
    fit_classifier(tx, ty, tx, ty, 3, cfg, state_dir=tmp_path)
    other = cfg.model_copy(update={"learning_rate": 0.01})
    with pytest.raises(InputError, match="same settings as the interrupted run"):
        fit_classifier(tx, ty, tx, ty, 3, other, state_dir=tmp_path, resume=True)
