"""Benchmark: `medsight train --task segment` against nnU-Net v2 under the same wall-clock budget.

Both segment lungs (label 1) and nodules (label 2) in the same synthetic chest-CT cohort
(`medsight synth chest-ct`, small size: 48x128x128 voxels at ~5 x 2.9 x 2.9 mm), split by
patient with `patient_split` (seeded, stratified), and both are scored on the identical test
cases with one Dice function against the generator's ground-truth masks.

Prints, side by side: test Dice (lung; nodule over the cases that have one; nodule over all
cases, an empty prediction of an empty mask counting 1), nodules predicted in normal scans,
preprocessing / training / prediction / total wall time, and the ratios (medsight/nnU-Net
for Dice, nnU-Net/medsight for time). The same numbers, with per-case Dice and nnU-Net's
plan, go to ``OUT/results.json``; each command's output goes to ``OUT/logs/``.

Setup (done by this script, once; ``--skip-install`` reuses it):

* nnU-Net lives in its own venv, ``.bench/nnunet-venv`` (python3.11), with exactly the torch
  medsight's venv has (torch==2.13.0, the local CPU wheel, held by a constraints file so pip
  can never swap it). ``nnunetv2`` and ``dynamic-network-architectures`` are installed
  ``--no-deps`` and nnunetv2's own requirements after them, because
  dynamic-network-architectures requires ``timm``, which requires ``torchvision``: neither is
  installed (there is no CPU torchvision for this torch), and both are uninstalled should
  they be present. Only the Primus/Eva networks import timm; the default trainer and
  PlainConvUNet never do.
* The budgeted trainer below is written into nnunetv2's trainer folder at top level
  (``nnunetv2/training/nnUNetTrainer/nnUNetTrainer_Budget.py``): nnU-Net finds trainers by
  importing its package's modules in order, and the ``primus`` subpackage, which imports
  timm, comes before ``variants/`` and before any ``nnUNet_extTrainer`` folder.

Fairness:

* Same data and split. nnU-Net's ``imagesTr`` holds the train and val cases and its
  ``splits_final.json`` fold 0 is exactly medsight's train/val split, so both fit on the
  train cases and watch the val cases; ``imagesTs`` holds the test cases. nnU-Net reads NIfTI
  converted once from the DICOM series (not timed: it is data setup); medsight reads the
  DICOM series directly, its normal path, and that reading is inside its timed train and
  predict commands.
* Same budget. ``--budget-minutes`` bounds each training loop's wall time: medsight's
  ``--max-minutes``; for nnU-Net, ``nnUNetTrainer_Budget``. That trainer is nnUNetTrainer
  (default ``nnUNetPlans`` 3d_fullres plan, not the larger ResEnc presets; its network,
  augmentation, loss, SGD with lr 1e-2 and poly decay, deep supervision, checkpointing)
  with only the clock changed: the loop stops at the budget
  (checked before each iteration) and saves ``checkpoint_final.pth``; the poly schedule runs
  over the budget instead of 1000 epochs (lr = 1e-2 (1 - t/budget)^0.9, set each iteration);
  an epoch is 50 train + 10 val iterations instead of 250 + 50 (same ratio, so the log shows
  progress); the final sliding-window validation is skipped (the test cases are predicted
  instead). Stock nnU-Net cannot simply be killed at the budget: its first checkpoint
  (``checkpoint_best.pth``) is written at the end of epoch 0, 250 iterations of about 2.2
  TFLOP each here, which takes over an hour on 2 cores (see the per-iteration time in the
  results); ``checkpoint_latest.pth`` comes every 50 epochs. Prediction
  uses ``checkpoint_final.pth`` and nnU-Net's defaults but one: test-time mirroring (8
  passes in 3D) is off, as in `medsight predict`, because on this CPU it multiplies
  nnU-Net's prediction time about five-fold and would inflate the time ratio in medsight's
  favour; ``--nnunet-tta`` turns it on.
* Same CPU. The commands run one after another, each alone with all cores; nnU-Net sets
  torch to all cores on CPU and starts its default data-augmentation workers (min(12,
  cores)); its preprocessing and prediction workers are capped at the core count. The
  machine should be otherwise idle.
* Times are wall times of whole commands (process start to exit): nnU-Net = plan and
  preprocess + train + predict; medsight = train (plan, cache and fit) + predict.

Run (from the repository root; data, venv and nnU-Net folders go under ``.bench/``)::

    .venv/bin/python bench/segment_vs_nnunet.py [--cases 120] [--budget-minutes 10] \\
        [--seed 0] [--out .bench/segment/results] [--skip-install] [--only both] \\
        [--nnunet-tta]

At the defaults a run takes about 40 minutes on 2 cores: two 10-minute training budgets plus
data generation, nnU-Net preprocessing, both predictions and medsight's plan and cache.

``--only nnunet`` or ``--only medsight`` runs one side; the other side's numbers are taken
from an earlier ``OUT/results.json`` made with the same cases, seed and budget, if any.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from medsight.errors import InputError
from medsight.imaging.data.manifest import read_manifest
from medsight.imaging.data.patient_split import patient_split
from medsight.imaging.io.nifti import read_nifti, write_volume_nifti
from medsight.imaging.io.read_image import read_image
from medsight.imaging.synth.chest_ct import write_chest_ct_dataset

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench" / "segment"
VENV = ROOT / ".bench" / "nnunet-venv"
LABELS = {"lung": 1, "nodule": 2}
DATASET_ID = 501
DATASET = f"Dataset{DATASET_ID}_SynthChest"
CONFIGURATION = "3d_fullres"
FOLD = "0"
TRAINER = "nnUNetTrainer_Budget"
NNUNET_PINS = ["nnunetv2==2.8.1", "dynamic-network-architectures==0.4.4"]
# nnunetv2 2.8.1's requirements (torch and dynamic-network-architectures aside) plus
# dynamic-network-architectures' own, less timm.
NNUNET_DEPS = [
    "acvl-utils>=0.2.6,<0.3",
    "batchgenerators>=0.25.1",
    "batchgeneratorsv2>=0.3.2",
    "blosc2>=3.3.2",
    "einops",
    "graphviz",
    "imagecodecs",
    "matplotlib",
    "nibabel",
    "numpy>=1.24",
    "pandas",
    "requests",
    "scikit-image>=0.19.3",
    "scikit-learn",
    "scipy",
    "seaborn",
    "SimpleITK>=2.2.1",
    "tifffile",
    "tqdm",
    "yacs",
]
BUDGET_ENV = "NNUNET_BENCH_BUDGET_S"

TRAINER_SOURCE = f'''"""nnUNetTrainer on a wall-clock budget; bench/segment_vs_nnunet.py wrote it.

Only the clock differs from nnUNetTrainer: the loop stops once {BUDGET_ENV} seconds have
passed since it started (checked before each iteration) and saves checkpoint_final.pth; the
poly learning-rate decay runs over the budget instead of 1000 epochs; an epoch is 50 train +
10 val iterations (nnU-Net's 5:1 ratio); the final sliding-window validation is skipped.
budget_summary.json records the iterations done and their times.
"""

import json
import os
import time

import torch
from batchgenerators.utilities.file_and_folder_operations import join

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class {TRAINER}(nnUNetTrainer):
    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.budget_s = float(os.environ["{BUDGET_ENV}"])
        self.num_iterations_per_epoch = 50
        self.num_val_iterations_per_epoch = 10
        self.num_epochs = 10**6  # the clock ends training; keeps PolyLRScheduler's base positive

    def run_training(self):
        self.on_train_start()
        start = time.perf_counter()
        deadline = start + self.budget_s
        step_seconds, epochs, out_of_time = [], 0, False
        while not out_of_time:
            self.on_epoch_start()
            self.on_train_epoch_start()
            train_outputs = []
            for _ in range(self.num_iterations_per_epoch):
                now = time.perf_counter()
                if now >= deadline:
                    out_of_time = True
                    break
                lr = self.initial_lr * (1 - (now - start) / self.budget_s) ** 0.9
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                batch = next(self.dataloader_train)
                t0 = time.perf_counter()
                train_outputs.append(self.train_step(batch))
                step_seconds.append(time.perf_counter() - t0)
            if out_of_time:
                break  # a partial epoch: its steps are in the weights, no validation
            self.on_train_epoch_end(train_outputs)
            with torch.no_grad():
                self.on_validation_epoch_start()
                val_outputs = [
                    self.validation_step(next(self.dataloader_val))
                    for _ in range(self.num_val_iterations_per_epoch)
                ]
                self.on_validation_epoch_end(val_outputs)
            self.on_epoch_end()
            epochs += 1
        loop_s = time.perf_counter() - start
        self.on_train_end()
        summary = {{
            "budget_s": self.budget_s,
            "loop_s": loop_s,
            "iterations": len(step_seconds),
            "full_epochs": epochs,
            "train_step_s_mean": sum(step_seconds) / max(1, len(step_seconds)),
            "train_step_s_first": step_seconds[0] if step_seconds else None,
            "loop_s_per_iteration": loop_s / max(1, len(step_seconds)),
            "batch_size": self.batch_size,
            "patch_size": list(self.configuration_manager.patch_size),
            "torch_threads": torch.get_num_threads(),
        }}
        with open(join(self.output_folder, "budget_summary.json"), "w") as f:
            json.dump(summary, f, indent=1)

    def perform_actual_validation(self, save_probabilities: bool = False):
        self.print_to_log_file("final validation skipped: the benchmark predicts its test cases")
'''


class BenchError(Exception):
    """An expected failure, reported as one line without a traceback."""


# --- commands ----------------------------------------------------------------------------


def run_logged(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    """Run ``cmd`` with its output in ``log``; return its wall time in seconds.

    Raises:
        BenchError: the command is missing or exits non-zero (the message quotes the log's
            last line, usually the error).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        try:
            rc = subprocess.run(
                cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False
            ).returncode
        except FileNotFoundError:
            raise BenchError(f"{cmd[0]}: not found") from None
    seconds = time.perf_counter() - start
    if rc != 0:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        last = lines[-1] if lines else "(no output)"
        name = " ".join(cmd[2:4]) if cmd[1:2] == ["-m"] else Path(cmd[0]).name
        raise BenchError(f"{name} exited {rc}: {last} (full log: {log})")
    return seconds


# --- data --------------------------------------------------------------------------------


def prepare_data(cases: int, seed: int) -> tuple[dict[str, Path], dict[str, Path], dict[str, str]]:
    """Generate (or reuse) the cohort, split it by patient, convert images to NIfTI.

    Returns:
        ``series`` (case -> DICOM series folder), ``masks`` (case -> ground-truth NIfTI) and
        ``split`` (case -> train/val/test).
    """
    data_dir, nifti_dir = WORK / "data", WORK / "nifti"
    stamp = WORK / "data_args.json"
    wanted = {"cases": cases, "seed": seed, "size": "small"}
    current = json.loads(stamp.read_text()) if stamp.is_file() else None
    if current != wanted or not (data_dir / "labels.csv").is_file():
        print(f"generating {cases} synthetic chest CTs (seed {seed}) in {data_dir}", flush=True)
        stamp.unlink(missing_ok=True)
        shutil.rmtree(nifti_dir, ignore_errors=True)
        write_chest_ct_dataset(data_dir, cases, seed)
        stamp.write_text(json.dumps(wanted))
    with open(data_dir / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    series = {r["case_id"]: data_dir / r["series_dir"] for r in rows}
    masks = {r["case_id"]: data_dir / r["mask"] for r in rows}
    split = patient_split(read_manifest(data_dir), seed)
    nifti_dir.mkdir(parents=True, exist_ok=True)
    todo = [c for c in series if not (nifti_dir / f"{c}.nii.gz").is_file()]
    if todo:
        print(f"converting {len(todo)} DICOM series to NIfTI for nnU-Net", flush=True)
    for case in todo:
        write_volume_nifti(nifti_dir / f"{case}.nii.gz", read_image(series[case]))
    return series, masks, split


# --- scoring -----------------------------------------------------------------------------


def dice(prediction: np.ndarray, truth: np.ndarray) -> float | None:
    """Dice of two boolean masks; None when both are empty (undefined)."""
    total = int(prediction.sum()) + int(truth.sum())
    if total == 0:
        return None
    return 2.0 * int(np.logical_and(prediction, truth).sum()) / total


def read_labels(path: Path, reference: Path) -> np.ndarray:
    """Read a label map and check it lies on the ground-truth mask's grid.

    Raises:
        BenchError: the file is unreadable, or its shape or affine differs from the mask's.
    """
    try:
        volume, ref = read_nifti(path), read_nifti(reference)
    except InputError as exc:
        raise BenchError(str(exc)) from None
    if volume.shape != ref.shape:
        raise BenchError(f"{path}: shape {volume.shape} differs from the mask's {ref.shape}")
    if not np.allclose(volume.affine_ras(), ref.affine_ras(), atol=1e-3):
        raise BenchError(f"{path}: affine differs from the mask's (geometry not kept)")
    return np.rint(volume.array).astype(np.int16)


def score(predictions: dict[str, Path], masks: dict[str, Path], test: list[str]) -> dict:
    """Dice per class and test case, and their means.

    Lung: mean over all cases (every scan has lungs). Nodule: mean over the cases whose
    mask has a nodule; and over all cases, where a normal scan scores 1 when no nodule is
    predicted (Dice of two empty masks) and 0 when one is (those are also counted).

    Raises:
        BenchError: a test case has no prediction, or a prediction is off the mask's grid.
    """
    missing = [c for c in test if c not in predictions]
    if missing:
        raise BenchError(f"no prediction for {len(missing)} test case(s), e.g. {missing[0]}")
    per_case: dict[str, dict[str, float | bool | None]] = {}
    for case in test:
        truth = read_labels(masks[case], masks[case])
        pred = read_labels(predictions[case], masks[case])
        row: dict[str, float | bool | None] = {
            name: dice(pred == k, truth == k) for name, k in LABELS.items()
        }
        row["has_nodule"] = bool((truth == LABELS["nodule"]).any())
        row["nodule_predicted"] = bool((pred == LABELS["nodule"]).any())
        per_case[case] = row
    rows = list(per_case.values())
    lung = [float(r["lung"]) for r in rows if r["lung"] is not None]
    nodule = [float(r["nodule"] or 0.0) for r in rows if r["has_nodule"]]
    nodule_all = [1.0 if r["nodule"] is None else float(r["nodule"]) for r in rows]
    return {
        "dice_lung": float(np.mean(lung)) if lung else None,
        "dice_nodule": float(np.mean(nodule)) if nodule else None,
        "dice_nodule_all_cases": float(np.mean(nodule_all)),
        "cases_with_nodule": len(nodule),
        "nodule_false_positive_cases": sum(
            bool(r["nodule_predicted"]) and not r["has_nodule"] for r in rows
        ),
        "per_case": per_case,
    }


# --- nnU-Net -----------------------------------------------------------------------------


def venv_bin(name: str) -> str:
    return str(VENV / "bin" / name)


def install_nnunet(skip: bool, logs: Path) -> None:
    """Create the nnU-Net venv (unless present with the same pins), then check it.

    Raises:
        BenchError: python3.11 or the venv is missing, pip fails, or the venv's torch is not
            medsight's.
    """
    torch_pin = f"torch=={importlib.metadata.version('torch')}"
    wanted = "\n".join([torch_pin, *NNUNET_PINS, *NNUNET_DEPS])
    stamp = VENV / "bench-installed.txt"
    if not skip and not (stamp.is_file() and stamp.read_text() == wanted):
        print(f"installing nnU-Net into {VENV} ({', '.join(NNUNET_PINS)}, {torch_pin})", flush=True)
        constraints = VENV.parent / "nnunet-constraints.txt"
        constraints.write_text(torch_pin + "\n")
        pip = [venv_bin("python"), "-m", "pip", "install", "-c", str(constraints)]
        if not (VENV / "bin" / "python").is_file():
            run_logged(["python3.11", "-m", "venv", str(VENV)], logs / "install_venv.log")
        run_logged([*pip, torch_pin], logs / "install_torch.log")
        run_logged([*pip, "--no-deps", *NNUNET_PINS], logs / "install_nnunet.log")
        run_logged([*pip, *NNUNET_DEPS], logs / "install_deps.log")
        run_logged(
            [venv_bin("python"), "-m", "pip", "uninstall", "-y", "timm", "torchvision"],
            logs / "install_remove_timm.log",
        )
        stamp.write_text(wanted)
    if not (VENV / "bin" / "python").is_file():
        raise BenchError(f"no nnU-Net venv at {VENV}: run without --skip-install first")
    check = (
        "import importlib.util, os, torch, nnunetv2\n"
        "from nnunetv2.run.run_training import run_training_entry\n"
        "from nnunetv2.inference.predict_from_raw_data import predict_entry_point\n"
        f"assert torch.__version__ == {torch_pin.split('==')[1]!r}, torch.__version__\n"
        "for name in ('timm', 'torchvision'):\n"
        "    assert importlib.util.find_spec(name) is None, name + ' is installed'\n"
        "print(os.path.dirname(nnunetv2.__file__))\n"
    )
    proc = subprocess.run([venv_bin("python"), "-c", check], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise BenchError(f"nnU-Net venv {VENV} is broken ({last}): run without --skip-install")
    package = Path(proc.stdout.strip().splitlines()[-1])
    (package / "training" / "nnUNetTrainer" / f"{TRAINER}.py").write_text(TRAINER_SOURCE)


def write_nnunet_dataset(raw: Path, masks: dict[str, Path], split: dict[str, str]) -> None:
    """Lay the cohort out as nnU-Net v2 raw dataset ``Dataset501_SynthChest``."""
    folder = raw / DATASET
    shutil.rmtree(folder, ignore_errors=True)
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (folder / sub).mkdir(parents=True)
    for case, part in sorted(split.items()):
        image = WORK / "nifti" / f"{case}.nii.gz"
        if part == "test":
            shutil.copyfile(image, folder / "imagesTs" / f"{case}_0000.nii.gz")
        else:
            shutil.copyfile(image, folder / "imagesTr" / f"{case}_0000.nii.gz")
            shutil.copyfile(masks[case], folder / "labelsTr" / f"{case}.nii.gz")
    dataset = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, **LABELS},
        "numTraining": sum(part != "test" for part in split.values()),
        "file_ending": ".nii.gz",
        "name": "SynthChest",
        "description": "medsight synthetic chest CT (lungs 1, nodule 2)",
    }
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=1))


def run_nnunet(
    masks: dict[str, Path], split: dict[str, str], budget_s: float, tta: bool, logs: Path
) -> dict:
    """Plan and preprocess, train under the budget, predict the test cases, score them."""
    base = WORK / "nnunet"
    raw, pre, results = base / "raw", base / "preprocessed", base / "results"
    shutil.rmtree(pre, ignore_errors=True)
    shutil.rmtree(results, ignore_errors=True)
    write_nnunet_dataset(raw, masks, split)
    cores = os.cpu_count() or 1
    env = {
        **os.environ,
        "nnUNet_raw": str(raw),
        "nnUNet_preprocessed": str(pre),
        "nnUNet_results": str(results),
        BUDGET_ENV: str(budget_s),
    }
    env.pop("PYTHONPATH", None)
    print("nnU-Net: plan and preprocess", flush=True)
    preprocess_s = run_logged(
        [
            venv_bin("nnUNetv2_plan_and_preprocess"),
            "-d",
            str(DATASET_ID),
            "-c",
            CONFIGURATION,
            "-np",
            str(cores),
            "-npfp",
            str(cores),
            "--verify_dataset_integrity",
        ],
        logs / "nnunet_plan_and_preprocess.log",
        env,
    )
    # fold 0 = medsight's train/val split, so both fit on the same cases
    train = sorted(c for c, p in split.items() if p == "train")
    val = sorted(c for c, p in split.items() if p == "val")
    (pre / DATASET / "splits_final.json").write_text(json.dumps([{"train": train, "val": val}]))
    plans = json.loads((pre / DATASET / "nnUNetPlans.json").read_text())
    config = plans["configurations"][CONFIGURATION]
    arch = config.get("architecture", {}).get("arch_kwargs", {})
    plan = {
        "patch_size": config["patch_size"],
        "batch_size": config["batch_size"],
        "spacing_mm": config["spacing"],
        "median_image_size": config.get("median_image_size_in_voxels"),
        "n_stages": arch.get("n_stages"),
        "features_per_stage": arch.get("features_per_stage"),
    }
    print(
        f"nnU-Net plan ({CONFIGURATION}): patch {plan['patch_size']}, batch "
        f"{plan['batch_size']}, spacing {plan['spacing_mm']} mm",
        flush=True,
    )
    print(f"nnU-Net: train fold {FOLD} for {budget_s / 60:g} min", flush=True)
    train_s = run_logged(
        [
            venv_bin("nnUNetv2_train"),
            str(DATASET_ID),
            CONFIGURATION,
            FOLD,
            "-tr",
            TRAINER,
            "-device",
            "cpu",
        ],
        logs / "nnunet_train.log",
        env,
    )
    model_dir = results / DATASET / f"{TRAINER}__nnUNetPlans__{CONFIGURATION}" / f"fold_{FOLD}"
    if not (model_dir / "checkpoint_final.pth").is_file():
        raise BenchError(f"nnU-Net left no checkpoint_final.pth in {model_dir}")
    summary = json.loads((model_dir / "budget_summary.json").read_text())
    print(
        f"nnU-Net: {summary['iterations']} iterations, "
        f"{summary['train_step_s_mean']:.2f} s per train step",
        flush=True,
    )
    out = base / "predictions"
    shutil.rmtree(out, ignore_errors=True)
    print("nnU-Net: predict the test cases", flush=True)
    predict_s = run_logged(
        [
            venv_bin("nnUNetv2_predict"),
            "-i",
            str(raw / DATASET / "imagesTs"),
            "-o",
            str(out),
            "-d",
            str(DATASET_ID),
            "-c",
            CONFIGURATION,
            "-f",
            FOLD,
            "-tr",
            TRAINER,
            "-chk",
            "checkpoint_final.pth",
            "-device",
            "cpu",
            "-npp",
            str(min(3, cores)),
            "-nps",
            str(min(3, cores)),
            *([] if tta else ["--disable_tta"]),
        ],
        logs / "nnunet_predict.log",
        env,
    )
    test = sorted(c for c, p in split.items() if p == "test")
    scores = score(
        {c: out / f"{c}.nii.gz" for c in test if (out / f"{c}.nii.gz").is_file()}, masks, test
    )
    return {
        **scores,
        "preprocess_s": preprocess_s,
        "train_s": train_s,
        "predict_s": predict_s,
        "predict_s_per_case": predict_s / len(test),
        "total_s": preprocess_s + train_s + predict_s,
        "plan": plan,
        "training": summary,
        "test_time_mirroring": tta,
    }


# --- medsight ----------------------------------------------------------------------------


def write_manifest(
    path: Path,
    cases: list[str],
    series: dict[str, Path],
    masks: dict[str, Path],
    split: dict[str, str],
    patients: dict[str, str],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["image", "mask", "patient_id", "split"])
        for case in cases:
            writer.writerow([series[case], masks[case], patients[case], split[case]])
    (path.parent / "labels.json").write_text(json.dumps(LABELS))


def run_medsight(
    series: dict[str, Path],
    masks: dict[str, Path],
    split: dict[str, str],
    budget_s: float,
    seed: int,
    logs: Path,
) -> dict:
    """Train with `medsight train --task segment`, predict the test manifest, score it."""
    base = WORK / "medsight"
    shutil.rmtree(base, ignore_errors=True)
    patients = {c.case_id: c.patient_id for c in read_manifest(WORK / "data")}
    cases = sorted(split)
    test = [c for c in cases if split[c] == "test"]
    write_manifest(base / "manifest.csv", cases, series, masks, split, patients)
    write_manifest(base / "test.csv", test, series, masks, split, patients)
    medsight = [sys.executable, "-m", "medsight"]
    run, out = base / "run", base / "predictions"
    print(f"medsight: train for {budget_s / 60:g} min", flush=True)
    train_s = run_logged(
        [
            *medsight,
            "train",
            str(base / "manifest.csv"),
            "--task",
            "segment",
            "-o",
            str(run),
            "--max-minutes",
            f"{budget_s / 60:g}",
            "--seed",
            str(seed),
        ],
        logs / "medsight_train.log",
    )
    print("medsight: predict the test cases", flush=True)
    predict_s = run_logged(
        [*medsight, "predict", str(run), str(base / "test.csv"), "-o", str(out)],
        logs / "medsight_predict.log",
    )
    listing = out / "predictions.json"
    if not listing.is_file():
        raise BenchError(f"medsight predict wrote no {listing}")
    by_path = {series[c].resolve(): c for c in test}
    predictions: dict[str, Path] = {}
    for item in json.loads(listing.read_text()):
        given = Path(item["input"])
        case = by_path.get(given.resolve()) or (given.name if given.name in series else None)
        if case is not None and item.get("segmentation"):
            seg = Path(item["segmentation"])
            predictions[case] = seg if seg.is_absolute() else out / seg
    return {
        **score(predictions, masks, test),
        "preprocess_s": None,  # inside train: plan and cache
        "train_s": train_s,
        "predict_s": predict_s,
        "predict_s_per_case": predict_s / len(test),
        "total_s": train_s + predict_s,
        "input": "DICOM series",
    }


# --- report ------------------------------------------------------------------------------


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


ROWS = [
    # key, label, format, ratio: medsight/nnU-Net ("m/n") or nnU-Net/medsight ("n/m")
    ("dice_lung", "Dice lung", "{:.3f}", "m/n"),
    ("dice_nodule", "Dice nodule (cases with one)", "{:.3f}", "m/n"),
    ("dice_nodule_all_cases", "Dice nodule (all, empty=1)", "{:.3f}", "m/n"),
    ("nodule_false_positive_cases", "nodules found in normal scans", "{:d}", None),
    ("preprocess_s", "plan + preprocess", "{:.0f} s", None),
    ("train_s", "train", "{:.0f} s", "n/m"),
    ("predict_s", "predict", "{:.0f} s", "n/m"),
    ("total_s", "total", "{:.0f} s", "n/m"),
]


def report(results: dict) -> dict[str, float | None]:
    """Print the side-by-side table; return the ratios."""
    nn, ms = results.get("nnunet") or {}, results.get("medsight") or {}
    ratios: dict[str, float | None] = {}
    print()
    print(f"{'':32s}{'nnU-Net':>12s}{'medsight':>12s}{'ratio':>10s}")
    for key, label, fmt, kind in ROWS:
        cells = [("-" if d.get(key) is None else fmt.format(d[key])) for d in (nn, ms)]
        value = None
        if kind == "m/n":
            value = ratio(ms.get(key), nn.get(key))
        elif kind == "n/m":
            value = ratio(nn.get(key), ms.get(key))
        if kind:
            ratios[f"{key} ({'medsight/nnU-Net' if kind == 'm/n' else 'nnU-Net/medsight'})"] = value
        shown = "" if kind is None else ("n/a" if value is None else f"{value:.2f}x")
        print(f"{label:32s}{cells[0]:>12s}{cells[1]:>12s}{shown:>10s}")
    print(
        "Dice ratios are medsight/nnU-Net; time ratios nnU-Net/medsight (goal: Dice >= 1.00x, "
        "total >= 2.00x)."
    )
    if nn.get("training"):
        t = nn["training"]
        mirroring = "with" if nn["test_time_mirroring"] else "without"
        print(
            f"nnU-Net predicted {mirroring} test-time mirroring, "
            f"{nn['predict_s_per_case']:.1f} s per case."
        )
        print(
            f"nnU-Net trained {t['iterations']} iterations ({t['full_epochs']} epochs of 50) "
            f"at {t['train_step_s_mean']:.2f} s per step, patch {nn['plan']['patch_size']}, "
            f"batch {nn['plan']['batch_size']}."
        )
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=120, help="synthetic scans (default 120)")
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=10.0,
        help="training-loop wall-clock budget of each side (default 10)",
    )
    parser.add_argument(
        "--medsight-budget-minutes",
        type=float,
        default=0.0,
        help="medsight's budget if not --budget-minutes (e.g. half of it: the issue's goal is "
        "nnU-Net's Dice at half its time); nnU-Net results of the same settings are reused",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WORK / "results")
    parser.add_argument(
        "--skip-install", action="store_true", help="reuse .bench/nnunet-venv as it is"
    )
    parser.add_argument("--only", choices=["nnunet", "medsight", "both"], default="both")
    parser.add_argument(
        "--nnunet-tta",
        action="store_true",
        help="predict with nnU-Net's test-time mirroring (its default; off here)",
    )
    args = parser.parse_args()
    if args.budget_minutes <= 0:
        raise BenchError("--budget-minutes must be positive")
    budget_s = args.budget_minutes * 60
    logs = args.out / "logs"
    settings = {
        "cases": args.cases,
        "seed": args.seed,
        "budget_minutes": args.budget_minutes,
        "cpu_cores": os.cpu_count(),
        "size": "small",
    }
    try:
        series, masks, split = prepare_data(args.cases, args.seed)
    except InputError as exc:
        raise BenchError(str(exc)) from None
    counts = {p: sum(s == p for s in split.values()) for p in ("train", "val", "test")}
    print(f"split by patient: {counts}", flush=True)
    previous_path = args.out / "results.json"
    previous = json.loads(previous_path.read_text()) if previous_path.is_file() else {}
    if previous.get("settings") != settings:
        previous = {}
    results: dict = {"settings": settings, "split": counts}
    if args.only in ("nnunet", "both"):
        install_nnunet(args.skip_install, logs)
        results["nnunet"] = run_nnunet(masks, split, budget_s, args.nnunet_tta, logs)
    else:
        results["nnunet"] = previous.get("nnunet")
    if args.only in ("medsight", "both"):
        medsight_s = (args.medsight_budget_minutes or args.budget_minutes) * 60
        results["medsight"] = run_medsight(series, masks, split, medsight_s, args.seed, logs)
        results["medsight"]["budget_minutes"] = medsight_s / 60
    else:
        results["medsight"] = previous.get("medsight")
    results["ratios"] = report(results)
    args.out.mkdir(parents=True, exist_ok=True)
    previous_path.write_text(json.dumps(results, indent=1))
    print(f"results: {previous_path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
