"""Benchmark: `medsight predict`'s sliding window against MONAI's, same trained model.

Both segment the same preprocessed series with the same network and window size (the
run's training patch). The reference is MONAI's ``sliding_window_inference`` with its
default settings (``sw_batch_size=1``, ``overlap=0.25``, constant blending) in fp32,
contiguous memory, under ``torch.no_grad``; medsight is `sliding_window_probabilities` as
`Segmenter` runs it (Gaussian blending, windows batched to a memory budget, channels_last,
``inference_mode``), plus its bf16 variant. Prints per-series latency (median of
``--repeats`` after a warm-up), the ratio, and the agreement of the two label maps.

    .venv/bin/python bench/segment_infer.py RUN [--series N] [--repeats 3]

RUN is a segmentation run (``medsight train --task segment`` or ``runs/demo/segment``).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from medsight.imaging.data.volume_loading import preprocess_image
from medsight.imaging.inference.segmenter import Segmenter
from medsight.imaging.inference.sliding_window import sliding_window_probabilities
from medsight.imaging.io.read_image import read_image


def _series(run: Path, n: int) -> list[Path]:
    record = json.loads((run / "dataset.json").read_text())
    data = Path(record["data"])
    manifest = data / "labels.csv" if data.is_dir() else data
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    column = "image" if "image" in rows[0] else "series_dir"
    return [manifest.parent / r[column] for r in rows[:n]]


def _time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up (oneDNN picks kernels on first use)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--series", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    segmenter = Segmenter(args.run)
    contract = segmenter.contract
    patch = contract.patch_size
    assert patch is not None
    k = len(contract.class_names)
    model = segmenter.model
    plain = Segmenter(args.run).model.to(memory_format=torch.contiguous_format).eval()
    rows = []
    for path in _series(args.run, args.series):
        array = preprocess_image(path, contract.preprocess)
        x = torch.from_numpy(array)[None, None]

        def monai_default(x: torch.Tensor = x) -> torch.Tensor:
            with torch.no_grad():
                return sliding_window_inference(x, patch, 1, plain)[0]

        def medsight(bf16: bool = False, array: np.ndarray = array) -> torch.Tensor:
            return sliding_window_probabilities(
                model, array, patch, k, overlap=0.25, background=segmenter.background(), bf16=bf16
            )

        t_ref, ref = _time(monai_default, args.repeats)
        t_ms, ours = _time(medsight, args.repeats)
        t_bf, ours_bf = _time(lambda: medsight(True), args.repeats)
        t_full, _ = _time(lambda path=path: segmenter.segment(read_image(path)).labels, 1)
        agree = float((ref.argmax(0) == ours.argmax(0)).float().mean())
        agree_bf = float((ours_bf.argmax(0) == ours.argmax(0)).float().mean())
        rows.append((path.name, array.shape, t_ref, t_ms, t_bf, agree, agree_bf, t_full))
        print(
            f"{path.name} {array.shape}: MONAI default {t_ref * 1000:.0f} ms | medsight "
            f"{t_ms * 1000:.0f} ms ({t_ref / t_ms:.2f}x) | bf16 {t_bf * 1000:.0f} ms "
            f"({t_ref / t_bf:.2f}x) | label agreement {agree:.4f} (bf16 vs fp32 {agree_bf:.4f})",
            flush=True,
        )
    ref_ms = 1000 * np.median([r[2] for r in rows])
    ms_ms = 1000 * np.median([r[3] for r in rows])
    bf_ms = 1000 * np.median([r[4] for r in rows])
    print()
    threads = torch.get_num_threads()
    print(f"model {contract.model_name} {contract.model_kwargs}, window {patch}, {threads} threads")
    print("| per series (median) | MONAI defaults | medsight fp32 | medsight bf16 |")
    print("|---|---|---|---|")
    print(f"| latency | {ref_ms:.0f} ms | {ms_ms:.0f} ms | {bf_ms:.0f} ms |")
    print(f"| speed-up | 1.00x | {ref_ms / ms_ms:.2f}x | {ref_ms / bf_ms:.2f}x |")
    full_ms = 1000 * np.median([r[7] for r in rows])
    print(
        f"whole `medsight predict` path per series (read DICOM, preprocess, fp32 window, "
        f"resample back, post-process): {full_ms:.0f} ms"
    )


if __name__ == "__main__":
    main()
