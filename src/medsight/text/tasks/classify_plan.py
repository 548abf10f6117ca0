"""The text-classify plan: what a run does with its notes, derived from the training split.

- outputs and their classes (``--labels``, else the default outputs of `classify_data`);
- the subword vocabulary size (larger corpora get more pieces) and ``max_tokens``, the 95th
  percentile of the training notes' length in tokens of a first, rough count (words and
  punctuation x 1.3 for subword splits), between `MIN_TOKENS` and `MAX_TOKENS_CAP`, so most
  notes are read whole and a few long ones are cut;
- the models to train and their sizes, the batch size and learning rate.

Every choice is written with its reason in ``notes``; ``plan.json`` is editable and a run
reuses it unless ``--replan`` (or ``--labels`` names other outputs than it holds).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medsight.errors import InputError
from medsight.runs.atomic import write_text_atomic
from medsight.text.tasks.classify_data import ClassifyData

PLAN_FILE = "plan.json"
DEFAULT_MODELS = ["cnn", "bilstm", "transformer"]
#: the longest note a model reads by default (attention and recurrence cost on a CPU)
MAX_TOKENS_CAP = 384
MIN_TOKENS = 32
_WORDS = re.compile(r"\w+|[^\w\s]")


class TextClassifyPlan(BaseModel):
    """A text-classify run's plan (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    task: str = "text-classify"
    #: the ``--labels`` the plan was made for ("" = the default outputs)
    labels: str = ""
    #: output -> classes, in head order
    outputs: dict[str, list[str]]
    models: list[str] = DEFAULT_MODELS
    vocab_size: int = Field(default=4000, ge=50)
    max_tokens: int = Field(ge=1)
    embed_dim: int = Field(default=64, ge=4)
    hidden_dim: int = Field(default=64, ge=2)
    layers: int = Field(default=2, ge=1)
    heads: int = Field(default=4, ge=1)
    dropout: float = Field(default=0.2, ge=0, lt=1)
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=2e-3, gt=0)
    n_train_notes: int = 0
    notes: list[str] = []


def make_plan(data: ClassifyData, labels: str = "") -> TextClassifyPlan:
    """Plan a run from ``data``'s training split (see the module docstring)."""
    train = data.indices("train")
    lengths = np.asarray([len(_WORDS.findall(data.texts[i])) * 1.3 for i in train] or [MIN_TOKENS])
    p95 = float(np.percentile(lengths, 95))
    max_tokens = int(min(MAX_TOKENS_CAP, max(MIN_TOKENS, 8 * round(p95 / 8 + 0.5))))
    vocab = 4000 if len(train) >= 500 else 2000 if len(train) >= 100 else 500
    notes = list(data.notes)
    notes.append(
        f"max_tokens {max_tokens}: 95th percentile of training note length ~{p95:.0f} "
        f"subword tokens (cap {MAX_TOKENS_CAP})"
    )
    notes.append(f"subword vocabulary up to {vocab} pieces ({len(train)} training notes)")
    notes.append(
        f"{len(data.classes)} output(s): "
        + ", ".join(f"{o} ({len(c)} classes)" for o, c in list(data.classes.items())[:6])
        + (", ..." if len(data.classes) > 6 else "")
    )
    return TextClassifyPlan(
        labels=labels,
        outputs=data.classes,
        vocab_size=vocab,
        max_tokens=max_tokens,
        batch_size=16 if len(train) < 200 else 32,
        n_train_notes=int(len(train)),
        notes=notes,
    )


def write_plan(path: Path, plan: TextClassifyPlan) -> Path:
    """Save ``plan`` as indented JSON (atomically)."""
    return write_text_atomic(path, plan.model_dump_json(indent=2) + "\n")


def read_plan(path: Path) -> TextClassifyPlan:
    """Load a plan a person may have edited.

    Raises:
        InputError: missing, or not a valid text-classify plan (names the first bad field).
    """
    if not path.is_file():
        raise InputError(f"{path}: no plan; run `medsight plan DATA --task text-classify` first")
    try:
        return TextClassifyPlan.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: invalid text-classify plan: {where}: {err['msg']}") from None
