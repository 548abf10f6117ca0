"""Benchmark: does peak memory stay flat when the classification dataset grows 10x?

Generates (or reuses, keyed by a marker file) synthetic chest-CT cohorts of 300 and 3,000
cases (``small`` size, seed 0) under ``--work``, and for each runs the classification data
path in FRESH subprocesses, so that every peak is that run's alone:

1. ``fill``: manifest, patient split, fingerprint + plan, and the cold cache fill
   (`prepare_classification_data` into an empty run folder);
2. ``epoch``: the same call again (every case now a cache hit), then ONE training epoch
   with validation (`train_classification_run` with ``max_epochs=1``).

Peak RSS is the kernel's high-water mark (``VmHWM``) of the process that holds the data; the
cache fill's worker processes (each holds one case at a time) and the whole process tree's
summed RSS are sampled every 0.1 s. Prints the CPU, a table per cohort size and the
3000/300 ratio of the peaks; a ratio up to ``FLAT_RATIO`` counts as flat (the fixed cost,
Python + torch + the model, dominates both; what scales with the cases must not). The
epoch's peak is one batch's activations, and the plan's batch grows with the cases up to 16
(``make_classify_plan``: development cases // 75, capped by memory): ``--batch-size N``
trains both sizes at one batch, which isolates the data path.

    .venv/bin/python bench/memory_scale.py [--work DIR] [--skip-epoch] [--batch-size N]

Once the cohorts exist it takes about 8 minutes on 2 idle cores (cache fills of 1 and 4
minutes, epochs of 20 s and 2.5 minutes at batch 16) and 25 on a loaded machine; generating
the cohorts first (3,300 cases, 5 GB of DICOM) took another hour here, on 2 shared cores.
Peaks at one setting varied by up to 40% between runs on that loaded machine (malloc's
per-thread arenas, presumably): compare sizes measured in one run, as the table does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

#: the 3000/300 peak-RSS ratio that still counts as flat
FLAT_RATIO = 1.25
SIZES = (300, 3000)
SEED = 0
MARKER = ".bench-memory.json"


def _status_kib(pid: int | str, field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of ``/proc/PID/status`` in KiB (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _descendants(root: int) -> set[int]:
    """``root`` and all its descendants, from the parent pids in ``/proc/*/stat``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    return tree


def _dataset(work: Path, cases: int) -> Path:
    """The cohort of ``cases`` under ``work``, generated unless its marker says it is there."""
    from medsight.imaging.synth.chest_ct import write_chest_ct_dataset

    folder = work / f"data-{cases}"
    marker = {"cases": cases, "seed": SEED, "size": "small"}
    marker_path = folder / MARKER
    if (
        (folder / "labels.csv").is_file()
        and marker_path.is_file()
        and json.loads(marker_path.read_text(encoding="utf-8")) == marker
    ):
        return folder
    print(f"generating {cases} cases into {folder} ...", flush=True)
    start = time.perf_counter()
    write_chest_ct_dataset(folder, cases, SEED, "small")
    marker_path.write_text(json.dumps(marker) + "\n", encoding="utf-8")
    print(f"  {time.perf_counter() - start:.0f} s", flush=True)
    return folder


def _du_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _child(stage: str, data: Path, run_dir: Path, result: Path, batch_size: int | None) -> None:
    """One measured stage, in this (fresh) process; writes its numbers to ``result``."""
    from medsight.imaging.synth.chest_ct import CLASSES
    from medsight.imaging.tasks.classify_data import prepare_classification_data

    out: dict[str, float] = {"rss_start_mb": _status_kib("self", "VmRSS") / 1024}
    start = time.perf_counter()
    prepared = prepare_classification_data(data / "labels.csv", run_dir, SEED, list(CLASSES))
    out["prepare_s"] = time.perf_counter() - start
    out["cache_hits"] = prepared.cache_hits
    out["rss_after_prepare_mb"] = _status_kib("self", "VmRSS") / 1024
    out["hwm_prepare_mb"] = _status_kib("self", "VmHWM") / 1024
    if stage == "epoch":
        from medsight.imaging.tasks.classify_run import train_classification_run
        from medsight.imaging.tasks.classify_setup import config_from_plan

        config = config_from_plan(
            prepared, max_epochs=1, seed=SEED, max_minutes=600, batch_size=batch_size
        )
        start = time.perf_counter()
        train_classification_run(prepared, config, run_dir)
        out["epoch_s"] = time.perf_counter() - start
        out["train_cases"] = len(prepared.indices("train"))
        out["batch_size"] = config.batch_size
    out["hwm_mb"] = _status_kib("self", "VmHWM") / 1024
    result.write_text(json.dumps(out), encoding="utf-8")


def _measure(
    stage: str, data: Path, run_dir: Path, log: Path, batch_size: int | None = None
) -> dict[str, float]:
    """Run ``stage`` in a fresh niced subprocess, sampling its process tree's RSS."""
    result = run_dir.parent / f"{run_dir.name}-{stage}.json"
    result.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--stage", stage, "--data", str(data)]
    command += ["--run", str(run_dir), "--result", str(result)]
    if batch_size:
        command += ["--batch-size", str(batch_size)]
    with open(log, "a", encoding="utf-8") as f:
        child = subprocess.Popen(["nice", "-n", "10", *command], stdout=f, stderr=subprocess.STDOUT)
        tree_peak = worker_peak = 0
        tree, scanned = {child.pid}, 0.0
        while child.poll() is None:
            if time.monotonic() - scanned > 2.0:  # a scan of /proc costs; the pool is stable
                tree, scanned = _descendants(child.pid), time.monotonic()
            rss = {pid: _status_kib(pid, "VmRSS") for pid in tree}
            tree_peak = max(tree_peak, sum(rss.values()))
            worker_peak = max([worker_peak, *(v for pid, v in rss.items() if pid != child.pid)])
            time.sleep(0.1)
    if child.returncode != 0 or not result.is_file():
        raise SystemExit(f"{stage} on {data} failed (exit {child.returncode}): see {log}")
    numbers = json.loads(result.read_text(encoding="utf-8"))
    numbers["tree_peak_mb"] = tree_peak / 1024
    # sampled: a worker's own ru_maxrss starts at its parent's RSS (fork, then exec)
    numbers["workers_peak_mb"] = worker_peak / 1024
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("runs/bench-memory"))
    parser.add_argument(
        "--skip-epoch", action="store_true", help="measure the cache fill only (minutes less)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="train both sizes with this batch (default: the plan's, which grows with the "
        "cases up to 16: the epoch's peak follows it)",
    )
    parser.add_argument("--stage", choices=["fill", "epoch"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        _child(args.stage, args.data, args.run, args.result, args.batch_size)
        return

    from medsight.hardware import cpu_summary

    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "bench.log"
    log.unlink(missing_ok=True)
    print(f"CPU: {cpu_summary()}, {os.cpu_count()} logical cores", flush=True)
    rows = []
    for cases in SIZES:
        data = _dataset(args.work, cases)
        run_dir = args.work / f"run-{cases}"
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"{cases} cases: cache fill ...", flush=True)
        fill = _measure("fill", data, run_dir, log)
        row = {"cases": cases, "cache_mb": _du_mb(run_dir / "cache"), "fill": fill}
        if not args.skip_epoch:
            print(f"{cases} cases: one epoch ...", flush=True)
            row["epoch"] = _measure("epoch", data, run_dir, log, args.batch_size)
        rows.append(row)
        print(f"  {json.dumps(row)}", flush=True)

    def peak(row: dict, key: str) -> float:
        return max(row[stage][key] for stage in ("fill", "epoch") if stage in row)

    print()
    header = (
        f"{'cases':>6s}{'batch':>6s}{'cache MB':>10s}{'fill s':>8s}{'epoch s':>9s}"
        f"{'RSS fill':>10s}{'RSS epoch':>11s}{'RSS peak':>10s}{'workers':>9s}{'tree peak':>11s}"
    )
    print(header)
    for row in rows:
        epoch = row.get("epoch")
        epoch_s = f"{epoch['epoch_s']:9.0f}" if epoch else f"{'-':>9s}"
        batch = f"{epoch['batch_size']:6d}" if epoch else f"{'-':>6s}"
        epoch_rss = f"{epoch['hwm_mb']:11.0f}" if epoch else f"{'-':>11s}"
        print(
            f"{row['cases']:6d}{batch}{row['cache_mb']:10.0f}"
            f"{row['fill']['prepare_s']:8.0f}{epoch_s}{row['fill']['hwm_mb']:10.0f}{epoch_rss}"
            f"{peak(row, 'hwm_mb'):10.0f}"
            f"{peak(row, 'workers_peak_mb'):9.0f}{peak(row, 'tree_peak_mb'):11.0f}"
        )
    small, large = rows[0], rows[-1]
    print(
        "\nRSS in MB: fill = peak (VmHWM) of the process running the cache fill; epoch = of the "
        "process running one epoch\n(cache warm); workers = largest cache-fill worker and tree "
        "peak = summed RSS of all the run's processes, both sampled every 0.1 s."
    )
    for key, name in (("hwm_mb", "peak RSS"), ("tree_peak_mb", "tree peak RSS")):
        ratio = peak(large, key) / peak(small, key)
        verdict = "flat" if ratio <= FLAT_RATIO else "GROWS"
        print(
            f"{name} {large['cases']}/{small['cases']} cases: {ratio:.2f}x "
            f"({verdict}; <= {FLAT_RATIO:.2f}x counts as flat)"
        )
    if "epoch" in small and small["epoch"]["batch_size"] != large["epoch"]["batch_size"]:
        print(
            "the batches differ (the plan's grows with the cases, up to 16): the epoch's peak "
            "is one batch's activations; --batch-size N compares the data path at one batch"
        )
    ratio = large["cache_mb"] / small["cache_mb"]
    print(f"cache on disk {large['cases']}/{small['cases']} cases: {ratio:.2f}x (grows, on disk)")


if __name__ == "__main__":
    main()
