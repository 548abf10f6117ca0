"""`--engine local`: the process pool writes what the in-process loop writes, and resumes.

Every test predicts the archive of `conftest.batch_archive` (six DICOM series, a corrupt
series in a patient-named folder, a text file named ``.png``) with a seeded classifier.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
from batch_kit import BAD, PATIENT_FOLDER, copy_run, outputs, write_classify_run

from medsight.batch.batch_prediction import predict_batch
from medsight.batch.batch_summary import SUMMARY_FILE
from medsight.batch.local_engine import WORKER_DIED
from medsight.batch.series_prediction import RESULT_FILE, SeriesOutcome
from medsight.errors import InputError


@pytest.mark.slow  # two spawned workers import torch and the modalities: 40 s on 2 busy cores
def test_pool_writes_what_the_in_process_loop_writes(
    batch_run: Path, batch_archive: list[Path], tmp_path: Path
) -> None:
    serial = predict_batch(batch_run, batch_archive, tmp_path / "serial", "local", jobs=1)
    pooled = predict_batch(batch_run, batch_archive, tmp_path / "pool", "local", jobs=2)
    for summary in (serial, pooled):
        assert (summary.count("done"), summary.count("skipped")) == (6, 0)
        assert [o.index for o in summary.failed] == BAD
    written = outputs(tmp_path / "serial")
    assert len(written) == 6 and written == outputs(tmp_path / "pool")
    records = [json.loads(b) for b in written.values()]
    assert sorted(r["input"] for r in records) == sorted(
        str(p) for i, p in enumerate(batch_archive) if i not in BAD
    )
    for r in records:
        assert r["task"] == "classify" and r["predicted"] in r["probabilities"]
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    # a seeded network that has not learnt: still, the inputs get different probabilities
    assert len({json.dumps(r["probabilities"]) for r in records}) == 6


def test_rerun_skips_finished_inputs_and_redoes_a_deleted_one(
    batch_run: Path, batch_archive: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = predict_batch(batch_run, batch_archive, out, "local", jobs=1)
    before = outputs(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob(RESULT_FILE)}
    again = predict_batch(batch_run, batch_archive, out, "local", jobs=1)
    assert (again.count("done"), again.count("skipped"), again.count("failed")) == (0, 6, 2)
    assert {p: p.stat().st_mtime_ns for p in out.rglob(RESULT_FILE)} == stamps
    deleted = next(o.key for o in first.outcomes if o.status == "done")
    assert deleted is not None
    shutil.rmtree(out / deleted)
    redone = predict_batch(batch_run, batch_archive, out, "local", jobs=1)
    assert (redone.count("done"), redone.count("skipped")) == (1, 5)
    assert [o.key for o in redone.outcomes if o.status == "done"] == [deleted]
    assert outputs(out) == before
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert (summary["done"], summary["skipped"], summary["failed"]) == (1, 5, 2)


def test_what_a_crash_leaves_behind_is_not_counted_as_done(
    batch_run: Path, batch_archive: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = predict_batch(batch_run, batch_archive, out, "local", jobs=1)
    keys = [o.key for o in first.outcomes if o.status == "done"]
    assert all(keys)
    # killed while writing: the temporary folder beside the output, never renamed into place
    shutil.move(out / str(keys[0]), out / f".{keys[0]}.k1ll3d")
    # a folder whose result record never arrived (written by hand, or by an older tool)
    (out / str(keys[1]) / RESULT_FILE).unlink()
    resumed = predict_batch(batch_run, batch_archive, out, "local", jobs=1)
    assert sorted(str(o.key) for o in resumed.outcomes if o.status == "done") == sorted(
        map(str, keys[:2])
    )
    assert resumed.count("skipped") == 4
    assert (out / str(keys[0]) / RESULT_FILE).is_file()


def test_bad_inputs_fail_with_a_reason_that_names_no_patient(
    batch_run: Path, batch_archive: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    summary = predict_batch(batch_run, batch_archive, out, "local", jobs=1)
    reasons = [o.reason or "" for o in summary.failed]
    assert len(reasons) == 2 and all(len(r) > 10 for r in reasons)
    shown = "\n".join([*summary.lines(), (out / SUMMARY_FILE).read_text()])
    for secret in ("DOE", "JANE", PATIENT_FOLDER, str(tmp_path), "1970"):
        assert secret not in shown
    assert "input 4 failed" in shown and "input 8 failed" in shown  # 1-based in the lines


def test_another_model_does_not_reuse_the_outputs_of_the_first(
    batch_run: Path, batch_archive: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    series = [p for i, p in enumerate(batch_archive) if i not in BAD][:2]
    predict_batch(batch_run, series, out, "local", jobs=1)
    other = write_classify_run(copy_run(batch_run, tmp_path / "retrained"), seed=1)
    second = predict_batch(other, series, out, "local", jobs=1)
    assert second.count("done") == 2 and second.count("skipped") == 0
    assert len(list(out.rglob(RESULT_FILE))) == 4


def test_ray_engine_without_ray_says_how_to_install_it(
    batch_run: Path, batch_archive: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(InputError, match=r"pip install medsight\[ray\]"):
        predict_batch(batch_run, batch_archive, tmp_path / "out", "ray")


def test_unknown_engine_and_a_folder_that_is_no_run_are_refused(
    batch_run: Path, batch_archive: list[Path], tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="--engine must be one of local, ray"):
        predict_batch(batch_run, batch_archive, tmp_path / "out", "dask")
    with pytest.raises(InputError, match="model.safetensors: missing"):
        predict_batch(tmp_path, batch_archive, tmp_path / "out", "local")


def test_a_model_that_cannot_load_stops_the_batch_with_one_sentence(
    batch_run: Path, batch_archive: list[Path], tmp_path: Path
) -> None:
    broken = copy_run(batch_run, tmp_path / "broken")
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # cut short, as by a failed copy
    out = tmp_path / "out"
    with pytest.raises(InputError, match="not a readable safetensors file"):
        predict_batch(broken, batch_archive, out, "local", jobs=1)
    assert not list(out.rglob(RESULT_FILE))
    assert json.loads((out / SUMMARY_FILE).read_text())["done"] == 0


def test_batch_records_are_the_records_the_plain_loop_prints(
    batch_run: Path, batch_archive: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medsight.cli.task_lookup import task_of_run
    from medsight.tasks.options import PredictOptions

    series = [p for i, p in enumerate(batch_archive) if i not in BAD][:3]
    predict_batch(batch_run, series, tmp_path / "out", "local", jobs=1)
    batch = {
        r["input"]: r for r in (json.loads(p.read_text()) for p in tmp_path.rglob(RESULT_FILE))
    }
    capsys.readouterr()
    task_of_run(batch_run).predict(batch_run, series, PredictOptions(as_json=True))
    plain = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(batch) == sorted(r["input"] for r in plain)
    for record in plain:  # ONNX Runtime there, PyTorch here: the same call, probabilities ~1e-6
        ours = batch[record["input"]]
        assert ours["predicted"] == record["predicted"]
        assert ours["probabilities"] == pytest.approx(record["probabilities"], abs=1e-4)


@pytest.mark.slow  # three pools of spawned workers: about a minute on 2 busy cores
def test_a_worker_killed_mid_batch_loses_no_input(
    batch_run: Path, batch_archive: list[Path], tmp_path: Path
) -> None:
    killed: list[int] = []

    def kill_a_worker(outcome: SeriesOutcome) -> None:
        workers = multiprocessing.active_children()
        if not killed and workers:  # after the first outcome, while others are in flight
            killed.append(workers[0].pid or 0)
            os.kill(killed[0], signal.SIGKILL)

    summary = predict_batch(
        batch_run, batch_archive, tmp_path / "out", "local", jobs=2, on_outcome=kill_a_worker
    )
    assert killed
    assert summary.count("done") + summary.count("skipped") == 6
    assert [o.index for o in summary.failed] == BAD
    assert all(o.reason != WORKER_DIED for o in summary.failed)  # none died alone on retry
    assert len(list((tmp_path / "out").rglob(RESULT_FILE))) == 6
