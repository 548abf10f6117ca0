"""Benchmark: series/s of `medsight predict` over an archive, plain loop vs the batch engines.

Each mode is one `medsight predict RUN labels.csv ...` process over the same synthetic
chest-CT series (``--series``, default 200), timed from the outside (process start to exit)
while the peak RSS of its whole process tree (Ray's raylet, object store and workers are
children of the driver) is sampled from ``/proc`` every 0.2 s:

- ``plain loop``: today's in-process predict (``--json``: ONNX Runtime, batches of 16);
- ``batch --jobs 1``: the batch's per-input step, in this process, one input after another;
- ``--engine local``: a process pool, one worker per core (the default);
- ``--engine ray``: Ray Data, one model actor per core (a local Ray started by the command).

The batch modes write into fresh folders, so every series is predicted (none skipped); a
last ``--engine local`` rerun over a finished folder times the skip path. Ratios are
against the plain loop of the same run. The last table extrapolates to 100,000 studies
(one series each) from each mode's measured seconds per series, on this machine and per
core (as core-hours, the number a cluster is sized by).

    .venv/bin/python bench/batch_predict.py [--run RUN] [--series 200] [--work DIR]

Without ``--run`` the run is made under ``--work`` (default ``runs/bench-batch``): the
demo's classifier network (`lungct-cnn`, depth 5, strided stem, 40 x 64 x 104 input, crop
to the lungs) with seeded weights; speed does not depend on what it learnt. RSS double-
counts shared pages (Ray's object store is shared memory mapped by several processes), so
the Ray figure is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from medsight.hardware import cpu_summary

STUDIES = 100_000


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (0 for those already gone)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(
                int(line.split()[1]) * 1024
                for line in status.splitlines()
                if line.startswith("VmRSS:")
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                stack.extend(int(c) for c in children)
        except (OSError, StopIteration, ValueError):
            continue
    return total


def timed(argv: list[str]) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    """Wall seconds and peak tree RSS of ``medsight ARGV``, and its result."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "medsight", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_rss_bytes(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    sampler.join()
    seconds = time.perf_counter() - started
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return seconds, peak[0], result


def make_run(folder: Path) -> Path:
    """The demo's classifier network with seeded weights (see the module docstring)."""
    import torch

    from medsight.imaging.models.checkpoint import ModelContract, save_checkpoint
    from medsight.imaging.models.registry import create_model
    from medsight.imaging.preprocess.contract import PreprocessContract

    if (folder / "model.safetensors").is_file():
        return folder
    torch.manual_seed(0)
    kwargs = {"depth": 5, "stem_stride": 2}
    contract = ModelContract(
        model_name="lungct-cnn",
        class_names=["normal", "benign", "malignant"],
        preprocess=PreprocessContract(
            spacing_mm=(5.0, 2.937, 2.937), orientation="LPS", shape=(40, 64, 104)
        ),
        model_kwargs=kwargs,
        seed=0,
    )
    save_checkpoint(folder, create_model("lungct-cnn", num_classes=3, **kwargs), contract)
    return folder


def make_series(folder: Path, n: int) -> Path:
    """``n`` synthetic chest-CT series (48 x 128 x 128), written once; returns labels.csv."""
    from medsight.imaging.synth.chest_ct import write_chest_ct_dataset

    labels = folder / "labels.csv"
    if labels.is_file() and len(labels.read_text().splitlines()) == n + 1:
        return labels
    return write_chest_ct_dataset(folder, n, seed=11, workers=os.cpu_count())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a classification run (default: made)")
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-batch"))
    parser.add_argument("--skip-ray", action="store_true", help="without the Ray engine")
    args = parser.parse_args()
    work: Path = args.work
    run = args.run or make_run(work / "run")
    manifest = make_series(work / f"series_{args.series}", args.series)
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    print(f"CPU: {cpu_summary()}, {cores} cores; load average {load:.1f} at start")
    print(f"{args.series} series of 48 x 128 x 128 DICOM slices; run {run}\n")

    outs = work / "outputs"
    shutil.rmtree(outs, ignore_errors=True)
    modes: list[tuple[str, list[str]]] = [
        ("plain loop", ["--json"]),
        ("batch --jobs 1", ["--jobs", "1", "-o", str(outs / "jobs1")]),
        (f"--engine local ({cores} jobs)", ["--engine", "local", "-o", str(outs / "local")]),
    ]
    if not args.skip_ray:
        modes.append(
            (f"--engine ray ({cores} actors)", ["--engine", "ray", "-o", str(outs / "ray")])
        )
    modes.append(
        ("--engine local, rerun (all skipped)", ["--engine", "local", "-o", str(outs / "local")])
    )
    rows = []
    for name, extra in modes:
        seconds, peak, result = timed(["predict", str(run), str(manifest), *extra])
        if result.returncode != 0:
            print(f"{name}: exit {result.returncode}\n{result.stderr[-2000:]}")
            continue
        inner = None
        if "-o" in extra:
            summary = json.loads(
                (Path(extra[extra.index("-o") + 1]) / "batch_summary.json").read_text()
            )
            inner = summary["seconds"]
            assert summary["failed"] == 0, summary
        rows.append((name, seconds, inner, peak))
        print(f"  {name}: {seconds:.1f} s", flush=True)
    plain = rows[0][1]
    print(
        f"\n{'mode':38} {'wall s':>7} {'series/s':>8} {'vs plain':>8} {'in-batch s':>10} "
        f"{'peak RSS tree':>13}"
    )
    for name, seconds, inner, peak in rows:
        print(
            f"{name:38} {seconds:7.1f} {args.series / seconds:8.2f} {plain / seconds:7.2f}x "
            f"{(f'{inner:.1f}' if inner is not None else '-'):>10} {peak / 2**30:10.2f} GiB"
        )
    print(
        f"\n{STUDIES:,} studies (one series each): seconds per series measured over the whole "
        "command (wall, one start-up included) and inside the batch (the summary's seconds)"
    )
    print(f"{'mode':38} {'s/series':>8} {'hours here':>10} {'core-hours':>10} {'days here':>9}")
    for name, seconds, inner, _ in rows:
        if "rerun" in name:
            continue
        for label, total in (("wall", seconds), ("in batch", inner)):
            if total is None:
                continue
            per_series = total / args.series
            hours = STUDIES * per_series / 3600
            print(
                f"{name + ', ' + label:38} {per_series:8.3f} {hours:10.1f} {hours * cores:10.1f} "
                f"{hours / 24:9.1f}"
            )
    print(f"load average {os.getloadavg()[0]:.1f} at the end (the machine is shared)")


if __name__ == "__main__":
    main()
