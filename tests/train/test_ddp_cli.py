"""`torchrun ... -m medsight train` on two CPU processes (gloo): a tiny imaging and a tiny EHR
run leave one run folder, written by rank 0 alone, whose validation metric is what one process
computes from the saved weights; a killed rank makes the other exit with one clear line; and
fold jobs run one by one are gathered by ``--folds K`` without retraining."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow  # every test starts torchrun or `python -m medsight`

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MEDSIGHT_DDP_TIMEOUT_S": "120"}
#: the outcome codes of the synthetic cohort's complication label (README, EHR section)
CODES = "ICD10CM//E11.2,ICD10CM//E11.3,ICD10CM//I21,ICD10CM//I63,ICD10CM//Z89.4"


def _medsight(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsight", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env or ENV,
    )


def _torchrun(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "medsight", "train", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def _history(run: Path) -> list[dict[str, float]]:
    with (run / "history.csv").open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def chest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of 12 synthetic chest CTs, one patient each (3 land in validation)."""
    from medsight.imaging.synth.chest_ct import write_chest_ct_dataset

    root = tmp_path_factory.mktemp("ddp-chest")
    write_chest_ct_dataset(root / "data", 12, seed=7, workers=1)
    with (root / "data" / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    lines = [f"{root / 'data' / r['series_dir']},{r['label']},p{i}" for i, r in enumerate(rows)]
    manifest = root / "manifest.csv"
    manifest.write_text("path,label,patient_id\n" + "\n".join(lines) + "\n")
    return manifest


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic MEDS cohort of 500 patients and its complication labels."""
    root = tmp_path_factory.mktemp("ddp-ehr")
    assert _medsight("synth", "ehr", str(root / "meds"), "--patients", "500").returncode == 0
    labels = root / "labels.parquet"
    made = _medsight(
        "ehr", "label", str(root / "meds"), "--task", "first-code", "--codes", CODES,
        "--within", "365", "--at", "date:2024-01-01", "-o", str(labels),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return root / "meds", labels


def test_imaging_run_on_two_ranks(chest: Path, tmp_path: Path) -> None:
    from medsight.evaluate.classification.classification_metrics import macro_auc
    from medsight.imaging.inference.predictor import predict_probabilities
    from medsight.imaging.models.checkpoint import load_checkpoint
    from medsight.imaging.tasks.classify_data import prepare_classification_data

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = tmp_path / "run"
    args = [str(chest), "-o", str(run), "--epochs", "2", "--batch-size", "4"]
    done = _torchrun(*args, "--precision", "fp32", env={**ENV, "TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr[-3000:]

    # one run folder, and rank 1's scratch folder is gone; only rank 0 spoke
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "tmp"]
    assert not [p for p in scratch.iterdir() if p.name.startswith("medsight-rank")]
    assert done.stdout.count("model: ") == 1
    assert "GLOBAL_RANK: 1" not in done.stdout + done.stderr
    record = json.loads((run / "train_config.json").read_text())["distributed"]
    assert (record["world_size"], record["backend"], record["per_rank_batch"]) == (2, "gloo", 2)

    # rank 0's validation metric = one process scoring the saved weights on the val split
    history = _history(run)
    assert [row["epoch"] for row in history] == [1.0, 2.0]
    model, contract = load_checkpoint(run)
    best = history[int(contract.extra["best_epoch"]) - 1]
    data = prepare_classification_data(chest, run, seed=0)
    val = data.indices("val")
    probs = predict_probabilities(
        model, data.volumes.subset(val), spatial_dims=contract.spatial_dims
    )
    log_probs = torch.log(torch.from_numpy(probs).clamp_min(1e-7))
    target = torch.from_numpy(data.labels[val].astype(np.int64))
    nll = float(torch.nn.functional.nll_loss(log_probs, target))
    assert nll == pytest.approx(best["val_loss"], rel=1e-4)
    auc = macro_auc(data.labels[val], probs)
    assert (0.5 if auc is None else auc) == pytest.approx(best["val_auc"], abs=1e-6)


def test_ehr_run_on_two_ranks_matches_medsight_evaluate(
    cohort: tuple[Path, Path], tmp_path: Path
) -> None:
    meds, labels = cohort
    run = tmp_path / "run"
    args = [str(meds), "--task", "ehr-risk", "--labels", str(labels), "-o", str(run)]
    # a plan a person edited in RUN: every rank must train the network it describes
    first = _medsight("train", *args, "--model", "gru", "--epochs", "1")
    assert first.returncode == 0, first.stderr
    plan = json.loads((run / "plan.json").read_text())
    plan["model"]["hidden_dim"] = 24
    (run / "plan.json").write_text(json.dumps(plan))
    done = _torchrun(*args, "--model", "gru", "--epochs", "2", env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert load_file(str(run / "model.safetensors"))["rnn.weight_hh_l0"].shape == (3 * 24, 24)
    history = _history(run / "models" / "gru")
    assert json.loads((run / "train_config.json").read_text())["distributed"]["world_size"] == 2

    evaluated = _medsight("evaluate", str(run), "-o", str(tmp_path / "eval"), "--n-boot", "100")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    gru = next(m for m in metrics["models"] if m["name"] == "gru")
    best = max(history, key=lambda row: (row["val_auc"], -row["val_loss"]))
    assert gru["tuning"]["roc_auc"] == pytest.approx(best["val_auc"], abs=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker_of_rank(agents: list[subprocess.Popen[str]], rank: int) -> int | None:
    """The pid of the training process torchrun started as global ``rank``."""
    for agent in agents:
        for child in _children(agent.pid):
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            if f"RANK={rank}".encode() in environ:
                return int(child)
    return None


def _agent_of(agents: list[subprocess.Popen[str]], pid: int) -> subprocess.Popen[str]:
    return next(a for a in agents if str(pid) in _children(a.pid))


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


@pytest.mark.parametrize(
    ("stop", "timeout_s"), [(signal.SIGKILL, 60), (signal.SIGSTOP, 20)], ids=["dead", "hung"]
)
def test_a_lost_rank_makes_the_other_exit_with_one_clear_line(
    cohort: tuple[Path, Path], tmp_path: Path, stop: signal.Signals, timeout_s: int
) -> None:
    """Two "nodes" (two torchrun agents, one process each, as on two machines): a rank-1
    process that dies ends rank 0 at once; one that hangs (stopped), after the process-group
    timeout. Neither leaves rank 0 waiting for ever."""
    meds, labels = cohort
    run = tmp_path / "run"
    port = _free_port()
    agents = []
    for _ in range(2):
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
        command += ["--nproc_per_node", "1", "--rdzv-backend", "c10d"]
        command += ["--rdzv-endpoint", f"127.0.0.1:{port}", "-m", "medsight", "train"]
        command += [str(meds), "--task", "ehr-risk", "--labels", str(labels), "-o", str(run)]
        command += ["--model", "gru", "--epochs", "500", "--max-minutes", "30"]
        agents.append(
            subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**ENV, "MEDSIGHT_DDP_TIMEOUT_S": str(timeout_s)},
            )
        )
    victim = None
    try:
        deadline = time.monotonic() + 300
        while not (run / "models" / "gru" / "history.csv").is_file():
            assert time.monotonic() < deadline, "training did not start"
            assert all(a.poll() is None for a in agents), agents[0].stderr.read()  # type: ignore[union-attr]
            time.sleep(0.5)
        victim = _worker_of_rank(agents, 1)
        assert victim is not None
        survivor = agents[1 - agents.index(_agent_of(agents, victim))]  # rank 0's agent
        os.kill(victim, stop)
        stopped = time.monotonic()
        survivor.wait(timeout=180)
        waited = time.monotonic() - stopped
    finally:
        if victim is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)  # a stopped process too
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
    outputs = [a.communicate(timeout=60) for a in agents]
    assert all(a.returncode != 0 for a in agents)
    if stop == signal.SIGSTOP:
        assert waited > timeout_s * 0.75  # the timeout ended it, nothing earlier
    assert waited < timeout_s + 30  # the timeout, and the process's own shutdown
    # rank 0's process printed one line, no traceback (torchrun's own report follows it)
    before, line, _ = outputs[agents.index(survivor)][1].partition("error: rank 0 of 2: ")
    assert line and "Traceback" not in before


def test_fold_jobs_are_gathered_without_retraining(
    cohort: tuple[Path, Path], tmp_path: Path
) -> None:
    meds, labels = cohort
    common = [str(meds), "--task", "ehr-risk", "--labels", str(labels), "--model", "gru"]
    common += ["--epochs", "2", "--folds", "2"]
    run = tmp_path / "jobs"
    for fold in ("2", "1"):
        job = _medsight("train", *common, "-o", str(run), "--fold", fold)
        assert job.returncode == 0, job.stderr
        assert f"fold {fold} of 2" in job.stdout
    assert not (run / "cv_metrics.json").exists()
    state = {n: run / f"fold_{n}" / "checkpoints" / "last.safetensors" for n in (1, 2)}
    trained = {n: path.stat().st_mtime_ns for n, path in state.items()}

    gathered = _medsight("train", *common, "-o", str(run))
    assert gathered.returncode == 0, gathered.stderr
    assert {n: path.stat().st_mtime_ns for n, path in state.items()} == trained  # not retrained
    whole = _medsight("train", *common, "-o", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    ours = json.loads((run / "cv_metrics.json").read_text())
    assert ours == json.loads((tmp_path / "whole" / "cv_metrics.json").read_text())
    assert json.loads((run / "ensemble.json").read_text())["members"] == ["fold_1", "fold_2"]

    refused = _medsight("train", *common, "-o", str(run), "--fold", "3")
    assert refused.returncode == 2 and "--fold 3" in refused.stderr
