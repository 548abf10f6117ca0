"""Benchmark: the EHR risk pipeline at 10k and 100k patients, and its training throughput.

Scale. For each ``--sizes`` cohort: ``medsight synth ehr --format events-csv`` (setup, not
judged), then the four stages a user runs, each as its own child process
(``python -m medsight ...``): ``ehr import --from events-csv`` (with the synthetic
splits), ``ehr label --task first-code`` (the synthetic outcome codes,
`medsight.ehr.synth.OUTCOME_PREFIXES`, within 365 days of 2024-01-01: one prediction time
per patient), ``train --task ehr-risk --model gru --epochs 1`` and ``evaluate``. Each
stage's wall time and peak RSS are measured on that child alone (``os.wait4`` on its pid:
its own ``ru_maxrss``, not the bench's cumulative ``RUSAGE_CHILDREN``). A table per size,
then per stage the ratio largest/smallest of peak RSS (goal: at most 1.5x for 10x the
patients) with PASS/FAIL. The RSS floor of a CLI that only starts (``medsight ehr import
--help``: Python, torch and the CLI imported) is printed beside it, since it is most of
every small stage's peak.

Throughput. On the smallest cohort's encoded samples (the cache ``train`` wrote, opened
through `prepare_risk_data`, so nothing is re-encoded), its training split (labelled),
in this process: medsight's batches (`medsight.ehr.data.batches.training_batches`:
length-bucketed, padded per batch to the batch's longest history, collated from the
memory-mapped arrays inside the timed loop) against a plain PyTorch loop over tensors
padded once to the plan's ``max_events`` (a ``TensorDataset`` and
``DataLoader(shuffle=True)``, padding done before timing). Both sides: the same model
class and sizes (the plan's ``gru``, same initial weights), the same step as the engine's
loop (BCE with logits and the run's ``pos_weight``, ``zero_grad``, backward, gradient
clipping at the config's norm, AdamW at the plan's learning rate), the same batch size,
samples and epochs (``EPOCHS``, run A-B-B-A so load drift on a shared machine falls on
both), the EHR config's thread count (``torch.set_num_threads``), denormals flushed to zero
on both sides where the engine's fit does (`risk_fit.flushed_denormals`; it changes both
sides' speed a lot, the padded side's most), one warm-up step each excluded. Only the
batch loop is timed. Prints samples/s (patients/s: one prediction time per patient here)
of both, the ratio (goal: >= 1.5x) and the padded slots per real event.

Timings depend on the machine: the CPU (``lscpu``), torch threads, bf16 support and the
load average are printed first, and the load average before every stage; compare only
ratios from one run. Big folders under ``--out`` are removed unless ``--keep``; the logs of
each stage and ``results.json`` stay.

    .venv/bin/python bench/ehr_scale.py [--sizes 10000,100000] [--out runs/bench-ehr] \\
        [--keep] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from medsight.ehr.data.batches import training_batches
from medsight.ehr.data.encoded_samples import EncodedSamples
from medsight.ehr.data.plan import EhrPlan
from medsight.ehr.models.registry import create_ehr_model
from medsight.ehr.synth import OUTCOME_PREFIXES
from medsight.ehr.tasks.risk_config import RiskTrainConfig
from medsight.ehr.tasks.risk_data import prepare_risk_data

try:  # the engine's fit flushes denormals (newer trees); both sides then run with it
    from medsight.ehr.tasks.risk_fit import flushed_denormals
except ImportError:  # older trees: neither side flushes
    flushed_denormals = contextlib.nullcontext

STAGES = ("import", "label", "train", "evaluate")
RSS_GOAL = 1.5
THROUGHPUT_GOAL = 1.5
#: timed epochs per side in the throughput comparison (run A-B-B-A)
EPOCHS = 2
MODEL = "gru"
Batch = tuple[dict[str, torch.Tensor], torch.Tensor]


# --- the machine -------------------------------------------------------------------------


def lscpu_field(name: str) -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "?"
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return "?"


def bf16_support() -> str:
    """What this CPU and torch offer for bf16 (detected, never assumed)."""
    try:
        flags = next(
            line.split(":", 1)[1].split()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
    except (OSError, StopIteration):
        flags = []
    native = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn = False
    if native:
        return f"yes ({', '.join(native)}; oneDNN bf16 {'on' if onednn else 'off'})"
    if onednn:
        return "emulated only (oneDNN bf16 on, no avx512_bf16/amx_bf16: slow)"
    return "no"


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# --- the stages as children --------------------------------------------------------------


def run_child(command: list[str], log: Path) -> dict[str, float | int | str]:
    """Run ``command``; its wall time, its own peak RSS (MiB) and exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    with open(log, "w") as out:
        out.write(" ".join(command) + "\n\n")
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait
    return {
        "seconds": seconds,
        "rss_mib": usage.ru_maxrss / 1024,  # Linux: KiB
        "rc": proc.returncode,
        "load1": load,
    }


def medsight(*args: object) -> list[str]:
    return [sys.executable, "-m", "medsight", *map(str, args)]


def pipeline(n: int, folder: Path, logs: Path, seed: int) -> dict[str, dict]:
    """synth (setup), then the four stages; stops at the first stage that fails."""
    synth, meds, run = folder / "synth", folder / "meds", folder / "run"
    labels = folder / "labels.parquet"
    commands = {
        "synth": medsight("synth", "ehr", synth, "--patients", n, "--seed", seed,
                          "--format", "events-csv"),
        "import": medsight("ehr", "import", synth / "events.csv", "--from", "events-csv",
                           "--splits", synth / "splits.csv", "-o", meds),
        "label": medsight("ehr", "label", meds, "--task", "first-code",
                          "--codes", ",".join(OUTCOME_PREFIXES), "--within", 365,
                          "--at", "date:2024-01-01", "-o", labels),
        "train": medsight("train", meds, "--task", "ehr-risk", "--labels", labels, "-o", run,
                          "--model", MODEL, "--epochs", 1, "--seed", seed),
        "evaluate": medsight("evaluate", run, "-o", run / "eval"),
    }  # fmt: skip
    results: dict[str, dict] = {}
    for stage, command in commands.items():
        result = run_child(command, logs / f"n{n}-{stage}.log")
        results[stage] = result
        print(
            f"  n={n:>7} {stage:9s} {result['seconds']:8.1f} s  {result['rss_mib']:8.0f} MiB"
            f"  rc {result['rc']}  load {result['load1']:.2f}",
            flush=True,
        )
        if result["rc"] != 0:
            tail = (logs / f"n{n}-{stage}.log").read_text(errors="replace").splitlines()[-15:]
            print("    FAILED; log tail:\n    " + "\n    ".join(tail), flush=True)
            break
    return results


# --- throughput: medsight's batches against padded tensors -------------------------------


def padded_dataset(samples: EncodedSamples, indices: np.ndarray, width: int) -> TensorDataset:
    """Every sample padded to ``width`` events (the model's input convention)."""
    starts = np.asarray(samples.offsets[indices], np.int64)
    lengths = np.minimum(np.asarray(samples.offsets[indices + 1], np.int64) - starts, width)
    mask = np.arange(width)[None, :] < lengths[:, None]
    rows = (starts[:, None] + np.arange(width)[None, :])[mask]

    def events(name: str, dtype: type) -> torch.Tensor:
        out = np.zeros(mask.shape, dtype)
        out[mask] = np.asarray(getattr(samples, name)[rows])
        return torch.from_numpy(out)

    return TensorDataset(
        events("code", np.int64),
        events("value_bin", np.int64),
        events("value", np.float32),
        events("hours_before", np.float32),
        events("delta_hours", np.float32),
        torch.from_numpy(mask),
        torch.from_numpy(np.asarray(samples.age_years[indices], np.float32)),
        torch.from_numpy(np.asarray(samples.sex[indices], np.int64)),
        torch.from_numpy(np.asarray(samples.label[indices], np.float32)),
    )


def as_inputs(batch: list[torch.Tensor]) -> Batch:
    code, value_bin, value, hours, delta, mask, age, sex, target = batch
    inputs = {
        "code": code,
        "value_bin": value_bin,
        "value": value,
        "hours_before": hours,
        "delta_hours": delta,
        "mask": mask,
        "age_years": age,
        "sex": sex,
    }
    return inputs, target


class Side:
    """One side of the comparison: a model, its optimiser, its batches, its timings."""

    def __init__(
        self,
        name: str,
        plan: EhrPlan,
        config: RiskTrainConfig,
        pos_weight: torch.Tensor,
        epoch_batches: Callable[[torch.Generator], Iterator[Batch]],
    ) -> None:
        torch.manual_seed(config.seed)  # same initial weights on both sides
        self.name, self.config, self.pos_weight = name, config, pos_weight
        self.model = create_ehr_model(MODEL, plan.model)
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch_batches = epoch_batches
        self.seconds, self.samples, self.slots = 0.0, 0, 0
        self.losses: list[float] = []

    def step(self, inputs: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        """The engine loop's step (`medsight.train.loop.fit`, fp32, one device)."""
        loss = F.binary_cross_entropy_with_logits(
            self.model(inputs).float(), target, pos_weight=self.pos_weight
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm)
        self.optimizer.step()
        return loss

    def warm_up(self) -> None:
        self.model.train()
        self.step(*next(iter(self.epoch_batches(torch.Generator().manual_seed(1)))))

    def epoch(self) -> None:
        self.model.train()
        losses = []
        start = time.perf_counter()
        for inputs, target in self.epoch_batches(self.generator):
            losses.append(self.step(inputs, target).detach())
            self.samples += len(target)
            self.slots += inputs["mask"].numel()
        self.seconds += time.perf_counter() - start
        self.losses.append(float(torch.stack(losses).mean()))

    def per_second(self) -> float:
        return self.samples / self.seconds


def throughput(meds: Path, labels: Path, run: Path, seed: int) -> dict[str, object]:
    prepared = prepare_risk_data(meds, labels, run)
    plan, samples = prepared.plan, prepared.samples
    train = prepared.indices("train")
    config = RiskTrainConfig(
        model_name=MODEL, batch_size=plan.batch_size, learning_rate=plan.learning_rate, seed=seed
    )
    y = np.asarray(samples.label[train], np.float64)
    ratio = (len(y) - y.sum()) / max(y.sum(), 1.0)
    pos_weight = torch.tensor(min(max(ratio, 1.0), config.pos_weight_cap), dtype=torch.float32)
    threads = config.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)

    start = time.perf_counter()
    padded = padded_dataset(samples, train, plan.max_events)
    pad_s = time.perf_counter() - start

    def ours(generator: torch.Generator) -> Iterator[Batch]:
        return training_batches(samples, train, config.batch_size, generator)

    def reference(generator: torch.Generator) -> Iterator[Batch]:
        loader = DataLoader(padded, batch_size=config.batch_size, shuffle=True, generator=generator)
        return (as_inputs(batch) for batch in loader)

    sides = [Side("medsight", plan, config, pos_weight, ours)]
    sides.append(Side("padded", plan, config, pos_weight, reference))
    order = [0, 1] * EPOCHS
    order = [i if (k // 2) % 2 == 0 else 1 - i for k, i in enumerate(order)]  # A B B A ...
    with flushed_denormals():
        for side in sides:
            side.warm_up()
        for i in order:
            sides[i].epoch()
            print(
                f"  {sides[i].name:9s} epoch {len(sides[i].losses)}: "
                f"{sides[i].per_second():7.1f} samples/s so far, "
                f"mean loss {sides[i].losses[-1]:.4f}  load {load_average()}",
                flush=True,
            )
    real_events = int(np.minimum(samples.lengths()[train], plan.max_events).sum()) * EPOCHS
    return {
        "samples": len(train),
        "batch_size": config.batch_size,
        "max_events": plan.max_events,
        "threads": threads,
        "epochs": EPOCHS,
        "padding_s": pad_s,
        "cache_hit": prepared.cache_hit,
        "flush_denormal": flushed_denormals is not contextlib.nullcontext,
        **{
            s.name: {
                "samples_per_s": s.per_second(),
                "seconds": s.seconds,
                "samples_seen": s.samples,
                "slots_per_event": s.slots / max(real_events, 1),
                "mean_loss": s.losses,
            }
            for s in sides
        },
    }


# --- report ------------------------------------------------------------------------------


def print_size_table(n: int, results: dict[str, dict]) -> None:
    print(f"\n{n} patients")
    print(f"  {'stage':10s}{'wall s':>10s}{'peak RSS MiB':>14s}{'load1':>8s}{'rc':>4s}")
    for stage, r in results.items():
        note = "  (setup, not judged)" if stage == "synth" else ""
        print(
            f"  {stage:10s}{r['seconds']:10.1f}{r['rss_mib']:14.0f}{r['load1']:8.2f}"
            f"{r['rc']:4d}{note}"
        )


def print_ratios(small: int, large: int, res: dict[int, dict], floor: dict) -> None:
    factor = large / small
    print(
        f"\nPeak RSS {large}/{small} patients ({factor:g}x the patients; goal <= {RSS_GOAL}x); "
        f"CLI start-up floor {floor['rss_mib']:.0f} MiB, {floor['seconds']:.1f} s"
    )
    head = f"{small} MiB"
    print(
        f"  {'stage':10s}{head:>12s}{f'{large} MiB':>13s}{'RSS ratio':>11s}"
        f"{'time ratio':>12s}  verdict"
    )
    for stage in STAGES:
        a, b = res[small].get(stage), res[large].get(stage)
        if not a or not b or a["rc"] or b["rc"]:
            print(f"  {stage:10s}{'':>12s}{'':>13s}{'n/a':>11s}{'n/a':>12s}  FAIL (did not run)")
            continue
        rss, t = b["rss_mib"] / a["rss_mib"], b["seconds"] / a["seconds"]
        verdict = "PASS" if rss <= RSS_GOAL else "FAIL"
        print(
            f"  {stage:10s}{a['rss_mib']:12.0f}{b['rss_mib']:13.0f}{rss:10.2f}x{t:11.2f}x"
            f"  {verdict}"
        )


def print_throughput(n: int, tp: dict) -> None:
    ours, ref = tp["medsight"], tp["padded"]
    ratio = ours["samples_per_s"] / ref["samples_per_s"]
    print(
        f"\nTraining throughput, {n}-patient cohort: {tp['samples']} training samples, "
        f"{MODEL}, batch {tp['batch_size']}, max_events {tp['max_events']}, "
        f"{tp['epochs']} epochs each (A-B-B-A), torch threads {tp['threads']}, fp32, "
        f"denormals flushed: {'yes' if tp['flush_denormal'] else 'no'} (as the engine's fit)"
    )
    print(f"  {'':30s}{'medsight':>12s}{'padded ref':>12s}{'ratio':>9s}")
    print(
        f"  {'patients/s (train samples/s)':30s}{ours['samples_per_s']:12.1f}"
        f"{ref['samples_per_s']:12.1f}{ratio:8.2f}x"
    )
    print(f"  {'timed loop s':30s}{ours['seconds']:12.1f}{ref['seconds']:12.1f}")
    print(
        f"  {'padded slots per real event':30s}{ours['slots_per_event']:12.2f}"
        f"{ref['slots_per_event']:12.2f}"
    )
    last = f"{ours['mean_loss'][-1]:.4f}", f"{ref['mean_loss'][-1]:.4f}"
    print(f"  {'last epoch mean loss':30s}{last[0]:>12s}{last[1]:>12s}")
    print(
        f"  (padding every sample once for the reference took {tp['padding_s']:.2f} s, "
        "outside its timing)"
    )
    verdict = "PASS" if ratio >= THROUGHPUT_GOAL else "FAIL"
    print(f"  goal >= {THROUGHPUT_GOAL}x: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="patients per cohort, a list")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-ehr"))
    parser.add_argument("--keep", action="store_true", help="keep the cohorts, MEDS and runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    out, logs = args.out.resolve(), args.out.resolve() / "logs"
    out.mkdir(parents=True, exist_ok=True)

    print(f"CPU: {lscpu_field('Model name')}, {lscpu_field('CPU(s)')} CPUs")
    print(
        f"torch {torch.__version__}: {torch.get_num_threads()} threads by default; "
        f"EHR training uses {RiskTrainConfig().threads or os.cpu_count()}; "
        f"bf16: {bf16_support()}"
    )
    print(f"load average (1/5/15 min) at start: {load_average()}\n")

    floor = run_child(medsight("ehr", "import", "--help"), logs / "floor.log")
    results: dict[int, dict] = {}
    tp: dict | None = None
    for n in sizes:
        folder = out / f"n{n}"
        shutil.rmtree(folder, ignore_errors=True)
        results[n] = pipeline(n, folder, logs, args.seed)
        if n == sizes[0] and results[n].get("train", {}).get("rc") == 0:
            print(f"throughput on the {n}-patient cohort:", flush=True)
            tp = throughput(folder / "meds", folder / "labels.parquet", folder / "run", args.seed)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        (out / "results.json").write_text(
            json.dumps({"sizes": results, "floor": floor, "throughput": tp}, indent=1)
        )

    print(f"\n=== CPU: {lscpu_field('Model name')}; load average at end {load_average()} ===")
    for n in sizes:
        print_size_table(n, results[n])
    if len(sizes) > 1:
        print_ratios(sizes[0], sizes[-1], results, floor)
    if tp is not None:
        print_throughput(sizes[0], tp)
    else:
        print("\nTraining throughput: not measured (the smallest cohort's train stage failed)")
    print(f"\nlogs and results.json: {out}")


if __name__ == "__main__":
    main()
