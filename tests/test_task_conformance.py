"""Every registered task, through the protocol the CLI and the service use (`medsight.tasks`).

Parametrised over the task registry, so a task registered without a tiny data set here fails
`test_every_task_has_conformance_data`. For each task: plan, fit one short epoch, reload the
model from the run folder alone, predict one input to a result record that validates and
parses back, evaluate; and a missing input names the command that makes it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import medsight.modalities  # noqa: F401  (registers every task)
from medsight.errors import InputError
from medsight.imaging.synth.chest_ct import write_chest_ct_dataset
from medsight.tasks import get_task, list_tasks, task_of_run
from medsight.tasks.options import EvaluateOptions, PredictOptions, TrainOptions
from medsight.tasks.results import parse_result


@dataclass(frozen=True)
class Conformance:
    """How to exercise one task on tiny data."""

    fixture: str
    options: TrainOptions
    first_input: Callable[[Path], Path]
    shrink_plan: Callable[[dict], None] = lambda plan: None


def _first_series(data: Path) -> Path:
    with open(data / "labels.csv", newline="") as f:
        return data / next(csv.DictReader(f))["series_dir"]


def _first_image(manifest: Path) -> Path:
    with open(manifest, newline="") as f:
        return manifest.parent / next(csv.DictReader(f))["image"]


def _small_unet(plan: dict) -> None:
    plan["model_kwargs"].update({"depth": 3, "base_filters": 4})


CASES = {
    "image-classify": Conformance("tiny_chest_ct", TrainOptions(max_epochs=1), _first_series),
    "image-segment": Conformance(
        "toy_segmentation",
        TrainOptions(max_epochs=1, iterations=2),
        _first_image,
        _small_unet,
    ),
}


@pytest.fixture(scope="module")
def tiny_chest_ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "data"
    write_chest_ct_dataset(out, 40, seed=3, workers=2)
    return out


def test_every_task_has_conformance_data() -> None:
    assert set(list_tasks()) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_task_spellings_find_the_same_task(name: str) -> None:
    task = get_task(name)
    assert get_task(task.run_name) is task and all(get_task(a) is task for a in task.aliases)


def test_unknown_task_lists_the_registered_ones() -> None:
    with pytest.raises(InputError, match="unknown task 'nope'; available: .*image-classify"):
        get_task("nope")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_task_fits_reloads_predicts_and_evaluates(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    case, task = CASES[name], get_task(name)
    data = request.getfixturevalue(case.fixture)
    run = tmp_path / "run"
    run.mkdir()
    notes = task.plan(data, run / "plan.json", 40, 0)
    assert notes and (run / "plan.json").is_file()
    plan = json.loads((run / "plan.json").read_text())
    case.shrink_plan(plan)
    (run / "plan.json").write_text(json.dumps(plan))

    task.train(data, run, case.options)
    contract = json.loads((run / "model.json").read_text())
    assert contract["task"] == task.run_name and (run / "model.safetensors").is_file()

    # the run folder alone says which task made it and how to load it
    assert task_of_run(run) is task
    loaded = task.load(run)
    record = loaded.predict(case.first_input(data), tmp_path / "prediction", False)
    assert record.task == task.run_name
    assert parse_result(json.loads(json.dumps(record.to_json()))) == record

    # a tiny validation split: 80% conformal sets need only 4 calibration cases
    task.evaluate(run, EvaluateOptions(out=run / "eval", n_boot=100, coverage=0.8))
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics and (run / "eval" / "report.html").is_file()


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_missing_run_names_the_command_that_makes_it(name: str, tmp_path: Path) -> None:
    task = get_task(name)
    with pytest.raises(InputError, match="medsight (train|demo)"):
        task_of_run(tmp_path)
    with pytest.raises(InputError, match="medsight (train|demo)"):
        task.evaluate(tmp_path, EvaluateOptions(out=tmp_path / "eval"))
    with pytest.raises(InputError, match="medsight (train|demo)"):
        task.predict(tmp_path, [tmp_path / "x.nii.gz"], PredictOptions(out=tmp_path / "o"))
