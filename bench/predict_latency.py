"""Benchmark: `medsight predict` latency per series, before and after issue 15, in one run.

For a classification run and a segmentation run, each series goes through the whole
`predict` path in-process (the run loaded once, as the service or a many-input predict
does), timed by stage: read the DICOM series, preprocess (the run's contract), model,
postprocess (conformal sets / back to the input grid, argmax, rules), write (classification:
the JSON record; segmentation: NIfTI, DICOM SEG, structures.json, overlays). Loading the
run, once per process, is printed apart (the new default includes an ONNX export).

"before" is the old path, rebuilt here so both are timed on the same series, interleaved:
classification ran the original and the mirrored input as two batch-1 PyTorch forwards,
segmentation ran PyTorch and blended windows with strided per-window arithmetic and a torch
argmax. "after" is the default now (`Predictor`, `Segmenter`: ONNX Runtime fp32).
"pytorch fp32" and, where the CPU has native bf16, "pytorch bf16" show the alternatives
the default was chosen against. Each column's agreement with "before" is printed:
classification the largest probability difference, segmentation the worst Dice.

    .venv/bin/python bench/predict_latency.py [--cls RUN] [--seg RUN] [--series 4]

Without ``--cls``/``--seg`` the runs are made (once) under ``--work`` (default
``runs/bench-predict``): a 40-case synthetic chest-CT cohort, a 1-epoch classifier and a
0.5-minute segmenter (latency does not depend on how well they learnt). An AVX2-only CPU
can be approximated for PyTorch with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``
(ONNX Runtime picks its kernels from CPUID and has no such switch).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from medsight.evaluate.classification.class_decision import read_decision_weights
from medsight.hardware import cpu_summary, native_bf16, resolve_precision
from medsight.imaging.explain.conformal_sets import conformal_sets
from medsight.imaging.inference.postprocess import apply_postprocess
from medsight.imaging.inference.predictor import Predictor
from medsight.imaging.inference.segmenter import Segmenter
from medsight.imaging.inference.sliding_window import (
    _mirror_sets,
    gaussian_weights,
    window_starts,
)
from medsight.imaging.io.read_image import read_image
from medsight.imaging.models.checkpoint import load_checkpoint
from medsight.imaging.preprocess.contract import apply_contract
from medsight.imaging.tasks.classify_predict import _record
from medsight.imaging.tasks.segment_predict import write_segmentation

STAGES = ("read", "preprocess", "model", "postprocess", "write")


def _medsight(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "medsight"), *args], check=True)


def make_runs(work: Path) -> tuple[Path, Path]:
    """A small cohort, a classifier and a segmenter under ``work`` (reused when present)."""
    data, cls, seg = work / "data", work / "cls", work / "seg"
    if not (data / "labels.csv").is_file():
        _medsight("synth", "chest-ct", str(data), "--cases", "40", "--seed", "0")
    if not (cls / "model.safetensors").is_file():
        _medsight("train", str(data / "labels.csv"), "-o", str(cls), "--epochs", "1")
    if not (seg / "model.safetensors").is_file():
        _medsight("train", str(data), "--task", "segment", "-o", str(seg), "--max-minutes", "0.5")
    return cls, seg


def series_of(run: Path, n: int) -> list[Path]:
    record = json.loads((run / "dataset.json").read_text())
    data = Path(record.get("data") or record["manifest"])  # segment / classify runs
    folder = data if data.is_dir() else data.parent
    return sorted((folder / "series").iterdir())[:n]


class Clock:
    """Per-stage seconds of one series."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self._last
        self._last = now


# ----- the reference ("before") paths, as they were --------------------------------------


@torch.inference_mode()
def reference_probabilities(model: torch.nn.Module, array: np.ndarray) -> np.ndarray:
    """The old `predict_probabilities`: original and mirror as two batch-1 forwards."""
    x = torch.from_numpy(array[None, None]).contiguous(memory_format=torch.channels_last_3d)
    probs = torch.softmax(model(x).float(), dim=1)
    probs = (probs + torch.softmax(model(x.flip(-1)).float(), dim=1)) / 2
    return probs.numpy()


def reference_sliding_window(
    model: torch.nn.Module,
    image: np.ndarray,
    patch_size: tuple[int, ...],
    num_classes: int,
    overlap: float,
    background: float,
) -> torch.Tensor:
    """The old `sliding_window_probabilities` (fp32, no mirroring), blend loop as it was."""
    model.eval()
    x = torch.from_numpy(np.asarray(image, dtype=np.float32))
    spatial = tuple(int(n) for n in x.shape)
    patch = tuple(int(p) for p in patch_size)
    padded = tuple(max(n, p) for n, p in zip(spatial, patch, strict=True))
    if padded != spatial:
        canvas = torch.full(padded, float(background))
        canvas[tuple(slice(0, n) for n in spatial)] = x
        x = canvas
    starts = [window_starts(n, p, overlap) for n, p in zip(padded, patch, strict=True)]
    corners = list(itertools.product(*starts))
    weights = gaussian_weights(patch)
    total, norm = torch.zeros((num_classes, *padded)), torch.zeros(padded)
    mirrors = _mirror_sets(())
    per_batch = max(1, (1 << 30) // (64 * 4 * int(np.prod(patch)) * len(mirrors)))
    with torch.inference_mode():
        for first in range(0, len(corners), per_batch):
            chunk = corners[first : first + per_batch]
            regions = [
                tuple(slice(c, c + p) for c, p in zip(corner, patch, strict=True))
                for corner in chunk
            ]
            windows = torch.stack([x[r] for r in regions])[:, None]
            batch = torch.cat([windows for _ in mirrors])
            batch = batch.contiguous(memory_format=torch.channels_last_3d)
            probs = torch.softmax(model(batch).float(), dim=1)
            merged = torch.zeros((len(chunk), num_classes, *patch))
            merged += probs
            merged /= len(mirrors)
            for region, window_probs in zip(regions, merged, strict=True):
                total[(slice(None), *region)] += window_probs * weights
                norm[region] += weights
    out = total / norm
    return out[(slice(None), *(slice(0, n) for n in spatial))].contiguous()


# ----- one series through one path, by stage ----------------------------------------------


def classify_series(
    predictor: Predictor, path: Path, reference: torch.nn.Module | None = None
) -> tuple[dict, np.ndarray]:
    clock = Clock()
    volume = read_image(path, workers=1)  # as `preprocess_image` reads
    clock.lap("read")
    array = apply_contract(volume, predictor.contract.preprocess)
    clock.lap("preprocess")
    if reference is not None:
        probs = reference_probabilities(reference, array)
    else:
        probs = predictor.predict_array(array[None])
    clock.lap("model")
    names = predictor.class_names
    sets = conformal_sets(predictor.run_dir, probs, names)
    weights = read_decision_weights(predictor.run_dir, names)
    clock.lap("postprocess")
    json.dumps(_record(names, probs, sets, 0, weights))
    clock.lap("write")
    return clock.stages, probs[0]


def segment_series(
    segmenter: Segmenter, path: Path, out: Path, variant: str
) -> tuple[dict, np.ndarray]:
    clock = Clock()
    volume = read_image(path)
    clock.lap("read")
    array = apply_contract(volume, segmenter.contract.preprocess)
    clock.lap("preprocess")
    assert segmenter.contract.patch_size is not None
    if variant == "before":
        probs = reference_sliding_window(
            segmenter.model,
            array,
            segmenter.contract.patch_size,
            len(segmenter.class_names),
            segmenter.overlap,
            segmenter.background(),
        )
    else:
        probs = segmenter.probabilities(array)
    clock.lap("model")
    if variant == "before":
        if tuple(probs.shape[1:]) != volume.shape:
            probs = F.interpolate(
                probs[None], size=volume.shape, mode="trilinear", align_corners=False
            )[0]
        indices = probs.argmax(0).numpy().astype(np.uint8)
        if segmenter.rules is not None:
            indices = apply_postprocess(
                indices, volume.spacing_mm, segmenter.class_names, segmenter.rules
            )
    else:
        indices = segmenter.on_grid(probs, volume)
    result = segmenter.labelled(indices)
    clock.lap("postprocess")
    write_segmentation(segmenter, path, volume, result, out / f"{variant}_{path.name}")
    clock.lap("write")
    return clock.stages, indices


def dice(a: np.ndarray, b: np.ndarray, classes: int) -> float:
    """Mean Dice over the foreground classes present in either mask (1.0 when none is)."""
    scores = []
    for k in range(1, classes):
        x, y = a == k, b == k
        if x.any() or y.any():
            scores.append(2 * np.logical_and(x, y).sum() / (x.sum() + y.sum()))
    return float(np.mean(scores)) if scores else 1.0


def run_variants(
    variants: dict[str, Callable[[Path], tuple[dict, np.ndarray]]],
    series: list[Path],
) -> tuple[dict[str, dict[str, float]], dict[str, list[np.ndarray]]]:
    """Median seconds per stage and the outputs, per variant; variants interleaved."""
    for run in variants.values():
        run(series[0])  # warm-up: oneDNN and ONNX Runtime pick kernels on first use
    timings: dict[str, list[dict]] = {name: [] for name in variants}
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in variants}
    for i, path in enumerate(series):
        order = list(variants) if i % 2 == 0 else list(reversed(variants))
        for name in order:
            stages, output = variants[name](path)
            timings[name].append(stages)
            outputs[name].append(output)
    medians = {
        name: {s: statistics.median(t[s] for t in rows) for s in STAGES}
        for name, rows in timings.items()
    }
    for name, rows in timings.items():
        medians[name]["total"] = statistics.median(sum(t.values()) for t in rows)
    return medians, outputs


def print_table(
    title: str,
    medians: dict[str, dict[str, float]],
    notes: dict[str, str],
    loads: dict[str, float],
) -> None:
    names = list(medians)
    print(f"\n{title} (ms per series, median)")
    print("| stage | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for stage in (*STAGES, "total"):
        row = [f"{1000 * medians[n][stage]:.0f}" for n in names]
        print(f"| {stage} | " + " | ".join(row) + " |")
    base = medians["before"]["total"]
    ratios = [f"{base / medians[n]['total']:.2f}x" for n in names]
    print("| speed-up (total) | " + " | ".join(ratios) + " |")
    print("| agreement with before | " + " | ".join(notes.get(n, "") for n in names) + " |")
    once = ", ".join(f"{n} {1000 * t:.0f} ms" for n, t in loads.items())
    print(f"loading the run, once per process (after includes the ONNX export): {once}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cls", type=Path, help="a classification run (default: made)")
    parser.add_argument("--seg", type=Path, help="a segmentation run (default: made)")
    parser.add_argument("--series", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-predict"))
    args = parser.parse_args()
    if args.cls is None or args.seg is None:
        made_cls, made_seg = make_runs(args.work)
        args.cls, args.seg = args.cls or made_cls, args.seg or made_seg
    print(f"CPU: {cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"medsight.hardware.resolve_precision('auto') on this CPU: {resolve_precision('auto')}")
    out = Path(tempfile.mkdtemp(prefix="predict-latency-"))
    try:
        series = series_of(args.cls, args.series + 1)
        start = time.perf_counter()
        reference = load_checkpoint(args.cls)[0].eval()  # as the old Predictor held it
        loads = {"before": time.perf_counter() - start}
        start = time.perf_counter()
        default = Predictor(args.cls)
        loads["after"] = time.perf_counter() - start
        eager = Predictor(args.cls, use_onnx=False)
        variants = {
            "before": lambda p: classify_series(eager, p, reference),
            "after": lambda p: classify_series(default, p),
            "pytorch fp32": lambda p: classify_series(eager, p),
        }
        if native_bf16():
            bf16 = Predictor(args.cls, bf16=True)
            variants["pytorch bf16"] = lambda p: classify_series(bf16, p)
        medians, outputs = run_variants(variants, series)
        notes = {}
        for n, o in outputs.items():
            diff = max(
                float(np.abs(a - b).max()) for a, b in zip(o, outputs["before"], strict=True)
            )
            notes[n] = f"max abs prob diff {diff:.1e}"
        engine = "ONNX Runtime" if default.onnx is not None else "PyTorch"
        print_table(f"classification {args.cls}; after = {engine} fp32", medians, notes, loads)

        series = series_of(args.seg, args.series + 1)
        eager_seg = Segmenter(args.seg, use_onnx=False)
        loads = {}
        start = time.perf_counter()
        default_seg = Segmenter(args.seg)
        loads["after"] = time.perf_counter() - start
        start = time.perf_counter()
        Segmenter(args.seg, use_onnx=False)  # the old Segmenter: PyTorch only
        loads["before"] = time.perf_counter() - start
        variants = {
            "before": lambda p: segment_series(eager_seg, p, out, "before"),
            "after": lambda p: segment_series(default_seg, p, out, "after"),
            "pytorch fp32": lambda p: segment_series(eager_seg, p, out, "fp32"),
        }
        if native_bf16():
            bf16_seg = Segmenter(args.seg, bf16=True)
            variants["pytorch bf16"] = lambda p: segment_series(bf16_seg, p, out, "bf16")
        medians, outputs = run_variants(variants, series)
        k = len(eager_seg.class_names)
        notes = {}
        for n, o in outputs.items():
            worst = min(dice(a, b, k) for a, b in zip(o, outputs["before"], strict=True))
            notes[n] = f"min Dice {worst:.4f}"
        engine = "ONNX Runtime" if default_seg.onnx is not None else "PyTorch"
        print_table(f"segmentation {args.seg}; after = {engine} fp32", medians, notes, loads)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
