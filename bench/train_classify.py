"""Benchmark: `medsight train` against a loop written the way MONAI's tutorials write it.

Same synthetic data, same split, same network (the plan's lungct-cnn), same optimiser and
learning-rate schedule, same epochs. The reference reads and preprocesses every series from
DICOM in each epoch through a MONAI ``Dataset`` of dict transforms and a ``DataLoader`` (two
workers), trains in fp32 without channels_last, and validates the same way; medsight fills
its on-disk cache once and trains from memory-mapped arrays with channels_last.

Prints, side by side: training samples/s, wall time to a validation macro AUC of 0.90,
final test macro AUC, and the ratios; the achieved training GFLOP/s of medsight against
this machine's measured bf16 and fp32 matmul peaks; predict latency per series with
PyTorch and with ONNX Runtime.

    .venv/bin/python bench/train_classify.py [--cases 300] [--epochs 30] [--out runs/bench]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, EnsureTyped, Lambdad, RandFlipd
from torch.utils.flop_counter import FlopCounterMode

from medsight.evaluate.classification.classification_metrics import macro_auc
from medsight.imaging.data.volume_loading import preprocess_image
from medsight.imaging.inference.onnx_run import export_run
from medsight.imaging.inference.predictor import Predictor, predict_probabilities
from medsight.imaging.synth.chest_ct import CLASSES, write_chest_ct_dataset
from medsight.imaging.tasks.classify_config import TrainConfig
from medsight.imaging.tasks.classify_data import prepare_classification_data
from medsight.imaging.tasks.classify_fit import AUC_UNDEFINED, build_model
from medsight.imaging.tasks.classify_run import train_classification_run
from medsight.train.loop import lr_factor

TARGET_AUC = 0.90


def _first_epoch_reaching(history: list[dict[str, float]], offset_s: float) -> float | None:
    for row in history:
        if row["val_auc"] >= TARGET_AUC:
            return offset_s + row["seconds"]
    return None


def reference_loop(data, config: TrainConfig, contract) -> dict[str, object]:
    """MONAI-tutorial style: dict transforms from file every epoch, DataLoader, plain loop."""
    torch.manual_seed(config.seed)

    def items(split: str) -> list[dict]:
        return [
            {"image": str(data.cases[i].image_path), "label": int(data.labels[i])}
            for i in data.indices(split)
        ]

    load = Lambdad(keys="image", func=lambda p: preprocess_image(Path(p), contract)[None])
    train_tf = Compose(
        [load, RandFlipd(keys="image", prob=0.5, spatial_axis=2), EnsureTyped(keys="image")]
    )
    eval_tf = Compose([load, EnsureTyped(keys="image")])
    train_loader = DataLoader(
        Dataset(items("train"), train_tf), batch_size=config.batch_size, shuffle=True, num_workers=2
    )
    val_loader = DataLoader(Dataset(items("val"), eval_tf), batch_size=8, num_workers=2)
    test_loader = DataLoader(Dataset(items("test"), eval_tf), batch_size=8, num_workers=2)
    model = build_model(config, len(CLASSES))
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )

    def predict(loader: DataLoader) -> tuple[np.ndarray, np.ndarray]:
        model.eval()
        probs, labels = [], []
        with torch.no_grad():
            for batch in loader:
                probs.append(torch.softmax(model(batch["image"].float()), 1).numpy())
                labels.append(np.asarray(batch["label"]))
        return np.concatenate(probs), np.concatenate(labels)

    history, start, train_seconds, seen = [], time.perf_counter(), 0.0, 0
    for epoch in range(1, config.max_epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * lr_factor(config, epoch - 1)
        model.train()
        t0 = time.perf_counter()
        for batch in train_loader:
            loss = F.cross_entropy(model(batch["image"].float()), batch["label"].long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(batch["label"])
        train_seconds += time.perf_counter() - t0
        probs, labels = predict(val_loader)
        history.append(
            {
                "epoch": epoch,
                "val_auc": _auc(labels, probs),
                "seconds": time.perf_counter() - start,
            }
        )
        print(f"  reference epoch {epoch}: val AUC {history[-1]['val_auc']:.3f}", flush=True)
    probs, labels = predict(test_loader)
    return {
        "samples_per_s": seen / train_seconds,
        "to_target_s": _first_epoch_reaching(history, 0.0),
        "total_s": time.perf_counter() - start,
        "test_auc": _auc(labels, probs),
    }


def _auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Macro AUC, scored as the training loop scores it when a class is missing."""
    auc = macro_auc(labels, probs)
    return AUC_UNDEFINED if auc is None else auc


def matmul_peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def training_flops_per_sample(config: TrainConfig, shape: tuple[int, int, int]) -> float:
    model = build_model(config, len(CLASSES))
    x = torch.randn(1, 1, *shape)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x).sum().backward()
    return float(counter.get_total_flops())


def predict_latency(run_dir: Path, series: list[Path]) -> tuple[float, float]:
    (run_dir / "model.onnx").unlink(missing_ok=True)
    torch_predictor = Predictor(run_dir)
    export_run(run_dir)
    onnx_predictor = Predictor(run_dir)
    timings = []
    for predictor in (torch_predictor, onnx_predictor):
        predictor.predict(series[0])  # warm-up
        start = time.perf_counter()
        for path in series:
            predictor.predict(path)
        timings.append((time.perf_counter() - start) / len(series))
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_train"))
    args = parser.parse_args()
    data_dir = args.out / "data"
    if not (data_dir / "labels.csv").is_file():
        write_chest_ct_dataset(data_dir, args.cases, args.seed)
    run_dir = args.out / "medsight"
    shutil.rmtree(run_dir, ignore_errors=True)

    start = time.perf_counter()
    data = prepare_classification_data(data_dir / "labels.csv", run_dir, args.seed, list(CLASSES))
    prep_s = time.perf_counter() - start
    plan = data.plan
    config = TrainConfig(
        model_kwargs={"depth": plan.network_depth},
        batch_size=plan.batch_size,
        max_epochs=args.epochs,
        patience=args.epochs,
        seed=args.seed,
        max_minutes=600,
    )
    fit = train_classification_run(data, config, run_dir)
    ours_total = time.perf_counter() - start
    n_train = len(data.indices("train"))
    ours = {
        "samples_per_s": n_train * len(fit.history) / fit.seconds,
        "to_target_s": _first_epoch_reaching(fit.history, prep_s),
        "total_s": ours_total,
        "test_auc": _auc(
            data.labels[data.indices("test")],
            predict_probabilities(fit.model, data.volumes.subset(data.indices("test"))),
        ),
    }
    print(f"medsight: {json.dumps(ours)}", flush=True)
    reference = reference_loop(
        data, config.model_copy(update={"channels_last": False}), plan.preprocess
    )

    def ratio(a: float | None, b: float | None) -> str:
        return "n/a" if a is None or b is None else f"{a / b:.2f}x"

    print()
    print(f"{'':28s}{'medsight':>14s}{'MONAI-style':>14s}{'ratio':>10s}")
    print(
        f"{'train samples/s':28s}{ours['samples_per_s']:14.2f}{reference['samples_per_s']:14.2f}"
        f"{ratio(ours['samples_per_s'], reference['samples_per_s']):>10s}"
    )
    fmt = lambda v: "not reached" if v is None else f"{v:.0f} s"  # noqa: E731
    ours_t, ref_t = ours["to_target_s"], reference["to_target_s"]
    label = "time to val AUC 0.90"
    print(f"{label:28s}{fmt(ours_t):>14s}{fmt(ref_t):>14s}{ratio(ref_t, ours_t):>10s}")
    print(
        f"{'total wall time':28s}{ours['total_s']:13.0f}s{reference['total_s']:13.0f}s"
        f"{ratio(reference['total_s'], ours['total_s']):>10s}"
    )
    print(f"{'final test macro AUC':28s}{ours['test_auc']:14.3f}{reference['test_auc']:14.3f}")
    flops = training_flops_per_sample(config, plan.preprocess.shape)
    achieved = flops * ours["samples_per_s"] / 1e9
    bf16, fp32 = matmul_peak_gflops(torch.bfloat16), matmul_peak_gflops(torch.float32)
    print(
        f"\nmedsight training: {achieved:.1f} GFLOP/s achieved = {achieved / bf16:.1%} of the bf16 "
        f"matmul peak ({bf16:.0f} GFLOP/s), {achieved / fp32:.1%} of fp32 ({fp32:.0f} GFLOP/s)"
    )
    series = [data.cases[i].image_path for i in data.indices("test")[:8]]
    torch_s, onnx_s = predict_latency(run_dir, series)
    print(
        f"predict latency per series: PyTorch {torch_s * 1000:.0f} ms, "
        f"ONNX Runtime {onnx_s * 1000:.0f} ms ({torch_s / onnx_s:.2f}x)"
    )


if __name__ == "__main__":
    main()
