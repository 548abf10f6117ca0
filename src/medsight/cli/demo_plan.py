"""The demo's time plan: what each section runs, chosen from a throughput probe to fit the budget.

`medsight demo` promises its whole run in ``--minutes`` (default 10) on two cores of any CPU
kind. Training to a wall-clock cut-off would make the model depend on the machine's speed and
load (the same command, different models; an under-trained classifier that never calls a
class). Instead each training section is planned *before* it starts, from seconds per step
measured on this machine (`medsight.imaging.tasks.step_probes`, a few seconds each), and then
runs that fixed schedule to the end:

* classification: the finest input resolution (a voxel budget of the plan) whose training
  fits its share of the time left with at least `MIN_CLASSIFY_EPOCHS` epochs; the cosine
  schedule spans exactly the planned epochs;
* segmentation: the epochs that fit the rest of the training time;
* the sections without a probe (cache fills, evaluation, EHR, text, report) are estimated
  from their cost on the reference machine times this machine's slowdown at generating the
  synthetic scans (numpy work like theirs; the classifier's slowdown would overstate it on a
  CPU without bf16, where only the network trains slower).

Every choice is written with its reason to ``RUN/demo_plan.json``; a rerun into the same
folder reuses it (same machine, same seed: the same models), ``--replan`` makes a new one.
Hand-written: no library plans a multi-section job against a wall-clock budget.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from medsight.console import say
from medsight.runs.atomic import write_text_atomic

PLAN_FILE = "demo_plan.json"
#: classification voxel budgets tried, finest first (the plan's default, then coarser)
VOXEL_BUDGETS = (320_000, 160_000, 80_000)
#: the strided-stem classifier passed validation AUC 0.9 by epoch 6-12 on the demo's scans
MIN_CLASSIFY_EPOCHS = 14
#: ... but called benign cases right only with longer training (same data, seed and
#: decision rule, test split): with the head's dropout, benign sensitivity 0.56 after 30
#: epochs, 0.83 after 45 and after 60; without it (CT plans now) the benign-vs-normal AUC of
#: 25 epochs with dropout came after 15, and 37 epochs gave benign sensitivity 0.78 and
#: balanced accuracy 0.91, so the epochs past 37 go to segmentation (a full demo at 45
#: reached 0.83 and 0.93, but nodule Dice 0.78 after the 15 segmentation epochs left)
MAX_CLASSIFY_EPOCHS = 37
#: a coarser input is only worth its lost detail when it trains at least this much faster
COARSER_MIN_SPEEDUP = 1.3
MIN_SEGMENT_EPOCHS = 4
MAX_SEGMENT_EPOCHS = 40
#: validation cases segmented whole after each segmentation epoch (the run's default is 12:
#: in the demo that was 2/3 of an epoch's time, and 4 still 40%: 16 epochs reached nodule
#: Dice 0.797 on a slow day); post-processing still uses all of them
SEGMENT_VAL_CASES = 2
#: share of the training time left that classification gets (segmentation: the rest;
#: on the reference machine the 37 classifier epochs leave the rest to segmentation)
CLASSIFY_SHARE = 0.55
#: validation forward passes cost about this share of a training step per sample
FORWARD_SHARE = 0.35
#: an epoch's training steps in the loop over the probe's (measured in full demos: 3.7 s an
#: epoch where the probe's steps gave 3.1 s with bf16, 10.2 s where they gave 9.5 s in fp32
#: with PyTorch limited to AVX2: loading, augmentation and the optimizer step come on top)
PROBE_TO_EPOCH = 1.15
#: a segmentation step in the loop over the probe's (full demos: 155 s where the probe gave
#: 140, 186 where it gave 152: patch sampling and the optimizer come on top)
SEGMENT_PROBE_TO_STEP = 1.15
#: the budget kept back for what estimates miss
SAFETY = 0.07
#: the reference machine (where the fixed costs below were measured, `make demo` on an idle
#: machine): 2 cores of an "Intel(R) Xeon(R) Processor" with AVX-512 and native bf16;
#: seconds per training sample of the classifier's probe at the default plan (320,000-voxel
#: input, batch 3, strided stem, bf16)
REFERENCE_SECONDS_PER_SAMPLE = 0.0141
#: seconds to generate the 300 synthetic scans there (the fixed costs' yardstick)
REFERENCE_SYNTH_SECONDS = 37.0
#: seconds of the sections without a probe on the reference machine, for 300 scans,
#: 3,000 EHR patients and 300 notes (scaled by cases and the measured slowdown)
REFERENCE_FIXED_SECONDS = {
    "classification cache": 12.0,
    "classification evaluation": 6.0,
    "segmentation cache": 17.0,
    "segmentation evaluation": 24.0,
    "EHR": 36.0,
    "clinical text": 5.0,
    "report": 2.0,
}


class DemoPlan(BaseModel):
    """``RUN/demo_plan.json``: the budget, the machine, and each section's choices."""

    model_config = ConfigDict(extra="forbid")

    budget_minutes: float
    cpu: str
    #: of the classifier (`medsight.hardware.resolve_precision("auto")`: bf16 where native);
    #: segmentation trains in fp32
    precision: str
    #: cases, seed, EHR patients, notes: a plan is reused only for the same demo
    demo: dict[str, Any]
    #: this machine's seconds per classifier training sample over the reference machine's
    slowdown: float | None = None
    #: this machine's time to generate the scans over the reference machine's (scales the
    #: sections without a probe; None when the data was reused: then 1)
    fixed_slowdown: float | None = None
    sections: dict[str, dict[str, Any]] = {}
    notes: list[str] = []


class DemoBudget:
    """The wall-clock ledger of one demo run and its saved plan."""

    def __init__(self, run_dir: Path, minutes: float, demo: dict[str, Any], replan: bool) -> None:
        from medsight.hardware import cpu_summary, resolve_precision

        self.path = run_dir / PLAN_FILE
        self.started = time.perf_counter()
        self.seconds = minutes * 60
        self.sections_seen: dict[str, float] = {}
        saved = None if replan else _read(self.path)
        cpu = cpu_summary()
        if saved is not None and saved.demo == demo and saved.cpu == cpu:
            self.plan, self.reused = saved, True
            say(f"plan: reusing {self.path} (--replan to plan anew)")
        else:
            self.plan = DemoPlan(
                budget_minutes=minutes, cpu=cpu, precision=resolve_precision("auto"), demo=demo
            )
            self.reused = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.seconds * (1 - SAFETY) - self.elapsed()

    def fixed_estimate(self, names: list[str], scale: float = 1.0) -> float:
        """Estimated seconds of the probe-less sections ``names`` on this machine."""
        slowdown = self.plan.fixed_slowdown or 1.0
        return sum(REFERENCE_FIXED_SECONDS[n] for n in names) * slowdown * scale

    def timed_synthesis(self, seconds: float, cases: int) -> None:
        """Note how long generating ``cases`` scans took here (the fixed costs' yardstick)."""
        if self.reused or cases <= 0:
            return
        ratio = seconds / (REFERENCE_SYNTH_SECONDS * cases / 300)
        self.plan.fixed_slowdown = round(min(4.0, max(0.5, ratio)), 3)

    def record(self, section: str, choice: dict[str, Any]) -> dict[str, Any]:
        """Save a section's choices (with the time left when it was planned)."""
        self.plan.sections[section] = {**choice, "planned_at_s": round(self.elapsed(), 1)}
        self.save()
        return self.plan.sections[section]

    def saved(self, section: str) -> dict[str, Any] | None:
        return self.plan.sections.get(section) if self.reused else None

    def save(self) -> None:
        write_text_atomic(self.path, self.plan.model_dump_json(indent=2) + "\n")

    def section(self, name: str, estimate_s: float | None = None) -> None:
        """Announce a section: its planned time and the demo's estimated time left."""
        self.sections_seen[name] = self.elapsed()
        left = max(0.0, self.seconds - self.elapsed())
        estimate = f", planned {estimate_s / 60:.1f} min" if estimate_s else ""
        now = self.elapsed() / 60
        say(f"[{now:4.1f} min] {name}{estimate} ({left / 60:.1f} min of the budget left)")


def _read(path: Path) -> DemoPlan | None:
    if not path.is_file():
        return None
    try:
        return DemoPlan.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError, OSError):
        return None  # an old or hand-broken plan: plan anew (the new one overwrites it)


def classify_epochs(seconds: float, per_sample: float, n_train: int, n_val: int) -> int:
    """Epochs of ``n_train`` training and ``n_val`` validation samples that fit ``seconds``."""
    epoch = PROBE_TO_EPOCH * per_sample * (n_train + FORWARD_SHARE * n_val) + 0.3  # + state
    return max(0, math.floor(seconds / epoch))


def segment_epochs(seconds: float, step: float, iterations: int, validation: float) -> int:
    """Epochs of ``iterations`` steps plus ``validation`` seconds that fit ``seconds``."""
    return max(0, math.floor(seconds / (iterations * step + validation + 0.3)))


def classification_chooser(
    budget: DemoBudget, num_classes: int, later: list[str], epochs_asked: int = 0
) -> Any:
    """The ``choose_plan`` hook of `prepare_classification_data` for the demo: the finest
    voxel budget whose fixed schedule fits, with the epochs that fit (and the probe's
    numbers) recorded in the demo plan. ``later``: the probe-less sections still to run;
    ``epochs_asked``: the user's ``--epochs`` (then the finest input is kept)."""
    from medsight.imaging.preprocess.fingerprint import DatasetFingerprint
    from medsight.imaging.preprocess.plan import Plan, make_classify_plan
    from medsight.imaging.tasks.classify_setup import config_for_plan
    from medsight.imaging.tasks.step_probes import classify_step_seconds

    def choose(fingerprint: DatasetFingerprint, counts: dict[str, int]) -> Plan:
        saved = budget.saved("classification")
        if saved is not None:  # the saved plan's input and batch: the same model again
            plan = make_classify_plan(fingerprint, voxel_budget=saved["voxel_budget"])
            return plan.model_copy(update={"batch_size": saved["batch_size"]})
        n_train, n_val = counts["train"], counts["val"]
        scale = fingerprint.n_cases / 300
        tried: list[dict[str, Any]] = []
        chosen: tuple[Plan, int, dict[str, Any]] | None = None
        for voxels in VOXEL_BUDGETS:
            plan = make_classify_plan(fingerprint, voxel_budget=voxels)
            config = config_for_plan(plan, bf16=budget.plan.precision == "bf16")
            per_sample = classify_step_seconds(plan, config, num_classes) / config.batch_size
            if budget.plan.slowdown is None:
                budget.plan.slowdown = round(per_sample / REFERENCE_SECONDS_PER_SAMPLE, 3)
            training = budget.left() - budget.fixed_estimate(later, scale)
            epochs = classify_epochs(training * CLASSIFY_SHARE, per_sample, n_train, n_val)
            row: dict[str, Any] = {
                "voxel_budget": voxels,
                "input": list(plan.preprocess.shape or ()),
                "seconds_per_sample": round(per_sample, 4),
                "epochs_that_fit": epochs,
            }
            tried.append(row)
            if chosen is not None and epochs < chosen[1] * COARSER_MIN_SPEEDUP:
                row["rejected"] = "not enough faster than the finer input"
                break
            chosen = (plan, epochs, row)
            if epochs >= MIN_CLASSIFY_EPOCHS or epochs_asked:
                break
        assert chosen is not None
        plan, fit, row = chosen
        if epochs_asked:
            epochs, reason = epochs_asked, f"--epochs {epochs_asked} ({fit} would fit)"
        elif fit >= MIN_CLASSIFY_EPOCHS:
            epochs = min(MAX_CLASSIFY_EPOCHS, fit)
            reason = f"the finest input whose {MIN_CLASSIFY_EPOCHS}+ epochs fit"
        elif fit >= MIN_CLASSIFY_EPOCHS // 2:
            epochs = fit
            reason = f"{fit} epochs fit at the finest input a coarser one would not beat"
        else:
            epochs = MIN_CLASSIFY_EPOCHS // 2
            reason = f"only {fit} epochs fit: {epochs} planned, over budget"
        budget.record(
            "classification",
            {
                "voxel_budget": row["voxel_budget"],
                "input": row["input"],
                "batch_size": plan.batch_size,
                "epochs": epochs,
                "estimate_s": round(
                    epochs
                    * PROBE_TO_EPOCH
                    * row["seconds_per_sample"]
                    * (n_train + FORWARD_SHARE * n_val),
                    1,
                ),
                "probe": tried,
                "reason": reason,
            },
        )
        say(
            f"plan: classifier input {row['input']} voxels, {epochs} epochs "
            f"({reason}; {row['seconds_per_sample']:.3f} s per training sample here)"
        )
        return plan

    return choose


def plan_segmentation(
    budget: DemoBudget, prepared: Any, later: list[str], epochs: int = 0, iterations: int = 0
) -> dict[str, Any]:
    """Epochs of the segmentation section from its probe and the time left (``epochs`` and
    ``iterations`` per epoch, when given, override the plan's: ``--quick``)."""
    from medsight.imaging.tasks.segment_run import config_from_plan
    from medsight.imaging.tasks.step_probes import (
        segment_step_seconds,
        segment_window_seconds,
        windows_per_volume,
    )

    saved = budget.saved("segmentation")
    if saved is not None:
        return saved
    config = config_from_plan(
        prepared.plan,
        iterations_per_epoch=iterations or None,
        val_cases_per_epoch=SEGMENT_VAL_CASES,
    )
    classes = len(prepared.class_names)
    step = segment_step_seconds(config, classes) * SEGMENT_PROBE_TO_STEP
    window = segment_window_seconds(config, classes)
    windows = windows_per_volume(prepared.plan, config.patch_size, config.overlap)
    n_val = min(config.val_cases_per_epoch, len(prepared.indices("val")))
    validation = n_val * windows * window
    training = budget.left() - budget.fixed_estimate(later, len(prepared.cases) / 300)
    fit = segment_epochs(training, step, config.iterations_per_epoch, validation)
    reason = f"{fit} epochs fit the time left"
    if epochs:
        reason += f"; {epochs} asked for"
    else:
        epochs = min(MAX_SEGMENT_EPOCHS, max(fit, MIN_SEGMENT_EPOCHS))
        if fit < MIN_SEGMENT_EPOCHS:
            reason += f"; {MIN_SEGMENT_EPOCHS} planned, over budget"
    choice = budget.record(
        "segmentation",
        {
            "epochs": epochs,
            "iterations_per_epoch": config.iterations_per_epoch,
            "val_cases_per_epoch": config.val_cases_per_epoch,
            "patch": list(config.patch_size),
            "estimate_s": round(epochs * (config.iterations_per_epoch * step + validation), 1),
            "probe": {
                "seconds_per_step": round(step, 4),
                "seconds_per_window": round(window, 4),
                "validation_windows": n_val * windows,
            },
            "reason": reason,
        },
    )
    say(f"plan: segmentation {epochs} epochs of {config.iterations_per_epoch} steps "
        f"({step:.2f} s per step here; {choice['reason']})")  # fmt: skip
    return choice
