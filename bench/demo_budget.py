"""Benchmark: `medsight demo` against its time budget and its quality goals, on this machine.

Runs the whole demo in a fresh folder (a new plan from the throughput probe; `--replan`), then
prints the CPU, each section's time (and what the plan expected of the training sections),
the total against the budget, and every quality goal of issue 15 with its measured value:

* classification: macro AUC >= 0.90, every class's sensitivity >= 0.70 at the decision rule,
  balanced accuracy >= 0.80, ECE <= 0.05 after temperature scaling, 90% conformal sets
  covering 85-95% of test cases;
* segmentation: nodule Dice >= 0.80.

``--isa avx2`` runs the demo with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``: PyTorch's
kernels limited to AVX2 and no bf16, an approximation of an AVX2-only CPU (the clock, caches
and memory of this machine stay what they are). ``--rerun`` runs the demo a second time into
the same folder (it reuses the saved plan) and compares the classifier's weights.

    .venv/bin/python bench/demo_budget.py [--out runs/bench-demo] [--minutes 10] [--isa avx2]

About the budget's length (10 minutes by default), twice with ``--rerun``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from medsight.hardware import cpu_summary

GOALS = [
    # (label, path in the results, comparison, bound)
    ("macro AUC", ("cls", "with_ci", "macro", "roc_auc", "point"), ">=", 0.90),
    (
        "balanced accuracy (decision rule)",
        ("cls", "decision_rule", "test", "balanced_accuracy", "point"),
        ">=",
        0.80,
    ),  # fmt: skip
    (
        "ECE after calibration (bias-corrected T)",
        ("cls", "calibration", "after_bias_corrected_scaling", "ece"),
        "<=",
        0.05,
    ),  # fmt: skip
    ("90% conformal coverage", ("cls", "conformal", "coverage"), "in", (0.85, 0.95)),
]


def _get(tree: dict, path: tuple[str, ...]) -> object:
    node: object = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _check(value: object, op: str, bound: object) -> str:
    if not isinstance(value, int | float):
        return "n/a"
    if op == ">=":
        return "yes" if value >= bound else "NO"  # type: ignore[operator]
    if op == "<=":
        return "yes" if value <= bound else "NO"  # type: ignore[operator]
    low, high = bound  # type: ignore[misc]
    return "yes" if low <= value <= high else "NO"


def _weights_digest(run: Path) -> str:
    return hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest()[:16]


def run_demo(out: Path, minutes: float, env: dict[str, str], replan: bool) -> float:
    command = [sys.executable, "-m", "medsight", "demo", "--out", str(out), "--minutes",
               str(minutes)] + (["--replan"] if replan else [])  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"demo failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    print(result.stdout)
    return seconds


def report(out: Path, wall_s: float, minutes: float) -> None:
    profile = json.loads((out / "demo_profile.json").read_text())
    plan = json.loads((out / "demo_plan.json").read_text())
    results = {"cls": json.loads((out / "metrics.json").read_text())}
    seg_metrics = out / "segment" / "eval" / "metrics.json"
    if seg_metrics.is_file():
        results["seg"] = json.loads(seg_metrics.read_text())
    print(f"\nsections (s), CPU {profile['cpu']}")
    print(f"{'section':60s} {'actual':>8s} {'planned training':>17s}")
    for row in profile["sections"]:
        planned = row["planned_training_s"]
        print(f"{row['section'][:60]:60s} {row['seconds']:8.0f} "
              f"{'' if planned is None else f'{planned:.0f}':>17s}")  # fmt: skip
    print(f"{'total (demo)':60s} {profile['total_s']:8.0f}   budget {minutes * 60:.0f} s")
    print(f"{'total (process, with start-up)':60s} {wall_s:8.0f}")
    cls = plan["sections"].get("classification", {})
    print(f"\nplan: slowdown vs reference {plan.get('slowdown')} (classifier probe), "
          f"{plan.get('fixed_slowdown')} (data generation), classifier input "
          f"{cls.get('input')} for {cls.get('epochs')} epochs; segmentation "
          f"{plan['sections'].get('segmentation', {}).get('epochs')} epochs")  # fmt: skip
    print(f"\n{'goal':44s} {'value':>10s}  met")
    for label, path, op, bound in GOALS:
        value = _get(results, path)
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{label + ' ' + op + ' ' + str(bound):44s} {shown:>10s}  {_check(value, op, bound)}")
    floor = _get(
        results, ("cls", "calibration", "after_bias_corrected_scaling", "ece_sampling_noise")
    )
    ts = _get(results, ("cls", "calibration", "after_temperature_scaling", "ece"))
    if isinstance(ts, float):
        print(f"{'  (ECE after temperature scaling alone)':44s} {ts:10.3f}")
    if isinstance(floor, dict):
        print(f"{'  (ECE of a calibrated model, same cases)':44s} {floor['mean']:10.3f}  "
              f"p95 {floor['p95']:.3f}")  # fmt: skip
    for name, row in results["cls"]["decision_rule"]["test"]["per_class"].items():
        value = row["sensitivity"]["point"]
        print(f"{'sensitivity ' + name + ' >= 0.7':44s} {value:10.3f}  {_check(value, '>=', 0.7)}")
    if "seg" in results:
        for name, row in results["seg"]["summary"]["per_class"].items():
            dice = row["metrics"]["dice"]["mean"]["point"]
            print(f"{'Dice ' + name + (' >= 0.8' if name == 'nodule' else ''):44s} {dice:10.3f}  "
                  f"{_check(dice, '>=', 0.8) if name == 'nodule' else ''}")  # fmt: skip
    within = profile["total_s"] <= minutes * 60
    print(f"{'demo within the budget':44s} {profile['total_s'] / 60:9.1f}m  "
          f"{'yes' if within else 'NO'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-demo"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--isa", choices=["native", "avx2"], default="native")
    parser.add_argument("--rerun", action="store_true", help="run again on the saved plan")
    args = parser.parse_args()
    env = dict(os.environ)
    label = cpu_summary()
    if args.isa == "avx2":
        env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
        label += " limited to AVX2 kernels (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2)"
    print(f"CPU: {label}; {os.cpu_count()} logical cores")
    if args.out.exists():
        shutil.rmtree(args.out)
    wall = run_demo(args.out, args.minutes, env, replan=True)
    report(args.out, wall, args.minutes)
    if args.rerun:
        first = _weights_digest(args.out)
        wall = run_demo(args.out, args.minutes, env, replan=False)
        second = _weights_digest(args.out)
        print(f"\nrerun on the saved plan: classifier weights "
              f"{'identical' if first == second else 'DIFFER'} ({first} vs {second})")  # fmt: skip
        report(args.out, wall, args.minutes)


if __name__ == "__main__":
    main()
