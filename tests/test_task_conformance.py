"""Every registered task, through the protocol the CLI and the service use (`medsight.tasks`).

Parametrised over the task registry, so a task registered without a tiny data set here fails
`test_every_task_has_conformance_data`. For each task: plan, fit one short epoch, reload the
model from the run folder alone, predict one input to a result record that validates and
parses back, evaluate; and a missing input names the command that makes it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import medsight.modalities  # noqa: F401  (registers every task)
from medsight.ehr.io.meds_dataset import MedsWriter
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
    #: the ``--labels`` value for the data (tasks whose labels are a file beside it)
    labels: Callable[[Path], str] | None = None


def _first_series(data: Path) -> Path:
    with open(data / "labels.csv", newline="") as f:
        return data / next(csv.DictReader(f))["series_dir"]


def _first_image(manifest: Path) -> Path:
    with open(manifest, newline="") as f:
        return manifest.parent / next(csv.DictReader(f))["image"]


def _small_unet(plan: dict) -> None:
    plan["model_kwargs"].update({"depth": 3, "base_filters": 4})


def _first_record(meds: Path) -> Path:
    """One held-out patient's MEDS rows, as the service stores a record."""
    events = pq.read_table(sorted((meds / "data" / "held_out").glob("*.parquet"))[0])
    subject = events.column("subject_id")[0]
    out = meds.parent / "record.parquet"
    pq.write_table(events.filter(pc.equal(events.column("subject_id"), subject)), out)
    return out


def _small_sequence_model(plan: dict) -> None:
    plan["model"].update({"embed_dim": 16, "hidden_dim": 16})


def _first_note(notes: Path) -> Path:
    """One note as the service stores it (``note.txt``)."""
    first = json.loads(notes.read_text().splitlines()[0])
    out = notes.parent / "note.txt"
    out.write_text(first["text"], encoding="utf-8")
    return out


def _small_text_model(plan: dict) -> None:
    plan.update({"models": ["cnn"], "embed_dim": 8, "hidden_dim": 8})


def _small_tagger(plan: dict) -> None:
    plan["sizes"].update({"word_dim": 8, "shape_dim": 4, "char_filters": 8, "hidden_dim": 8})


CASES = {
    "image-classify": Conformance("tiny_chest_ct", TrainOptions(max_epochs=1), _first_series),
    "image-segment": Conformance(
        "toy_segmentation",
        TrainOptions(max_epochs=1, iterations=2),
        _first_image,
        _small_unet,
    ),
    "ehr-risk": Conformance(
        "tiny_meds",
        TrainOptions(max_epochs=1),
        _first_record,
        _small_sequence_model,
        labels=lambda meds: str(meds.parent / "labels.parquet"),
    ),
    "text-classify": Conformance(
        "tiny_feedback_notes", TrainOptions(max_epochs=1), _first_note, _small_text_model
    ),
    "text-ner": Conformance(
        "tiny_phi_notes",
        TrainOptions(max_epochs=1, labels="phi"),
        lambda notes: notes.parent / "note.txt",
        _small_tagger,
    ),
}


@pytest.fixture(scope="module")
def tiny_chest_ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "data"
    write_chest_ct_dataset(out, 40, seed=3, workers=2)
    return out


@pytest.fixture(scope="module")
def tiny_meds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MEDS folder of 160 subjects (labels.parquet beside it): the outcome follows HbA1c."""
    out = tmp_path_factory.mktemp("meds")
    rng = np.random.default_rng(0)
    start = dt.datetime(2100, 1, 1)
    rows: dict[str, list] = {"subject_id": [], "time": [], "code": [], "numeric_value": []}
    labels = []
    for s in range(1, 161):
        level = rng.normal(8, 1.5)
        events = [(start - dt.timedelta(days=365 * 60), "MEDS_BIRTH", None), (None, "SEX//F", None)]
        events += [
            (start + dt.timedelta(days=30 * k), "LOINC//4548-4", level + rng.normal(0, 0.3))
            for k in range(6)
        ]
        for time, code, value in events:
            rows["subject_id"].append(s)
            rows["time"].append(time)
            rows["code"].append(code)
            rows["numeric_value"].append(value)
        labels.append((s, level + rng.normal(0, 1) > 8))
    with MedsWriter(out / "meds", dataset_name="conformance", buckets=2) as writer:
        writer.add(rows)
    moment = start + dt.timedelta(days=200)
    table = pa.table(
        {
            "subject_id": pa.array([s for s, _ in labels], pa.int64()),
            "prediction_time": pa.array([moment] * len(labels), pa.timestamp("us")),
            "boolean_value": pa.array([y for _, y in labels], pa.bool_()),
        }
    )
    pq.write_table(table, out / "labels.parquet")
    return out / "meds"


@pytest.fixture(scope="module")
def tiny_feedback_notes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 short feedback notes (JSONL), one per patient: the sentiment follows the words."""
    out = tmp_path_factory.mktemp("notes") / "feedback.jsonl"
    words = {"positive": ["kind", "helpful", "thank you"], "negative": ["rude", "slow", "dirty"]}
    rng = np.random.default_rng(0)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(60):
            sentiment = "positive" if i % 2 else "negative"
            text = f"The staff were {rng.choice(words[sentiment])} on ward {i % 7}."
            row = {
                "note_id": f"n{i}",
                "subject_id": f"p{i}",
                "time": "2100-01-01T00:00:00",
                "text": text,
                "sentiment": sentiment,
            }
            f.write(json.dumps(row) + "\n")
    return out


@pytest.fixture(scope="module")
def tiny_phi_notes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 notes with planted names, dates and MRNs (JSONL, ``phi`` spans) and a note.txt."""
    out = tmp_path_factory.mktemp("phi") / "phi.jsonl"
    rng = np.random.default_rng(0)
    names = ["Anna Novak", "Boris Okafor", "Carla Petrov", "Hugo Sato"]
    with open(out, "w", encoding="utf-8") as f:
        for i in range(30):
            name, mrn = str(rng.choice(names)), str(rng.integers(10**6, 10**7))
            text = f"Patient {name} was seen on 03/{i % 28 + 1:02d}/2101. MRN {mrn}. Lungs clear."
            phi = [
                {"start": 8, "end": 8 + len(name), "type": "NAME"},
                {"start": text.index("03/"), "end": text.index("03/") + 10, "type": "DATE"},
                {"start": text.index(mrn), "end": text.index(mrn) + 7, "type": "ID"},
            ]
            f.write(json.dumps({"subject_id": f"p{i}", "text": text, "phi": phi}) + "\n")
    (out.parent / "note.txt").write_text(text, encoding="utf-8")
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

    options = (
        case.options if case.labels is None else replace(case.options, labels=case.labels(data))
    )
    task.train(data, run, options)
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
