"""What the verbs pass to a task: one frozen record per verb, the same from CLI and Python.

Options that only some tasks use are named for them (``labels``: segmentation label names);
a task refuses, with a clear error, an option it does not take.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medsight.errors import InputError


@dataclass(frozen=True)
class TrainOptions:
    """`medsight train`'s options (None: the plan's or the task's default)."""

    model_name: str | None = None
    max_epochs: int = 40
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int = 0
    classes: list[str] | None = None
    resume: bool = False
    init_weights: Path | None = None
    freeze_backbone: bool = False
    backbone_lr_scale: float = 1.0
    folds: int = 0
    replan: bool = False
    preset: str = ""
    labels: str = ""
    max_minutes: float | None = None
    memory_gb: float = 0.0
    bf16: bool | None = None
    iterations: int | None = None
    deep_supervision: bool | None = None


def refuse_imaging_options(options: TrainOptions, task: str, folds: bool = False) -> None:
    """Refuse, by flag name, the image tasks' training options a ``task`` does not take.

    Args:
        options: The verb's options.
        task: The task's registry name (for the message).
        folds: Also refuse ``--folds`` (tasks without cross-validation).

    Raises:
        InputError: any of those options was given.
    """
    given = {
        "--classes": options.classes,
        "--preset": options.preset,
        "--iterations": options.iterations,
        "--deep-supervision": options.deep_supervision,
        "--freeze-backbone": options.freeze_backbone,
        "--backbone-lr-scale": options.backbone_lr_scale != 1.0,
        "--folds": folds and options.folds,
    }
    used = [flag for flag, value in given.items() if value]
    if used:
        raise InputError(f"{', '.join(used)}: not options of --task {task}")


@dataclass(frozen=True)
class EvaluateOptions:
    """`medsight evaluate`'s options."""

    out: Path
    data: Path | None = None
    sensitivity: float | None = None
    coverage: float = 0.90
    n_boot: int = 1000
    tolerance_mm: float = 2.0
    overlap: float = 0.25
    mirror: bool = False


@dataclass(frozen=True)
class PredictOptions:
    """`medsight predict`'s options."""

    out: Path | None = None
    heatmap: Path | None = None
    overlap: float = 0.25
    mirror: bool = False
    bf16: bool = False
    as_json: bool = False


@dataclass(frozen=True)
class ExplainOptions:
    """`medsight explain`'s options."""

    out: Path
    method: str = "gradcam"
    class_name: str | None = None
    slices: int = 3
