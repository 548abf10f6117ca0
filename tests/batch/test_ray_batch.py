"""`--engine ray`: Ray Data's actor pool writes what the local engine writes, and resumes.

A local Ray (2 CPUs, a 150 MB object store, no dashboard) is started once for the module
and shut down after it; the engine joins it instead of starting its own.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from batch_kit import BAD, PATIENT_FOLDER, outputs

from medsight.batch.batch_prediction import predict_batch
from medsight.batch.batch_summary import SUMMARY_FILE
from medsight.errors import InputError

ray = pytest.importorskip("ray")  # the optional extra; `.[dev]` installs it for CI
pytestmark = [pytest.mark.slow, pytest.mark.external]  # starts a Ray cluster: ~1 min


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, object_store_memory=150 * 2**20, include_dashboard=False)
    yield
    ray.shutdown()


def test_ray_engine_writes_what_the_local_engine_writes_and_resumes(
    local_ray: None, batch_run: Path, batch_archive: list[Path], tmp_path: Path
) -> None:
    local, remote = tmp_path / "local", tmp_path / "ray"
    predict_batch(batch_run, batch_archive, local, "local", jobs=1)
    summary = predict_batch(batch_run, batch_archive, remote, "ray", jobs=2)
    assert summary.jobs == 2
    assert (summary.count("done"), summary.count("skipped")) == (6, 0)
    assert [o.index for o in summary.failed] == BAD
    assert outputs(remote) == outputs(local) and len(outputs(local)) == 6
    shown = "\n".join([*summary.lines(), (remote / SUMMARY_FILE).read_text()])
    assert PATIENT_FOLDER not in shown and "DOE" not in shown and str(tmp_path) not in shown

    again = predict_batch(batch_run, batch_archive, remote, "ray", jobs=2)
    assert (again.count("done"), again.count("skipped"), again.count("failed")) == (0, 6, 2)
    deleted = next(o.key for o in summary.outcomes if o.status == "done")
    shutil.rmtree(remote / str(deleted))
    redone = predict_batch(batch_run, batch_archive, remote, "ray", jobs=2)
    assert [o.key for o in redone.outcomes if o.status == "done"] == [deleted]
    assert redone.count("skipped") == 5
    assert outputs(remote) == outputs(local)
    assert json.loads((remote / SUMMARY_FILE).read_text())["engine"] == "ray"


def test_an_actor_whose_model_cannot_load_stops_the_batch_with_one_sentence(
    local_ray: None, batch_run: Path, batch_archive: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(batch_run, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(InputError, match=r"model.safetensors: not a readable safetensors file"):
        predict_batch(broken, batch_archive[:2], tmp_path / "out", "ray", jobs=1)
