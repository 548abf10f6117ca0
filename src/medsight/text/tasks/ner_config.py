"""A `text-ner` run's plan (``plan.json``: network and sizes) and training settings.

`medsight plan DATA --task text-ner` writes the plan from the data's note lengths; `train`
reuses ``RUN/plan.json`` when it exists (``--replan`` remakes it), so sizes can be edited
before training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medsight.errors import InputError
from medsight.runs.atomic import write_text_atomic
from medsight.text.models.tagger_sizes import NETWORKS, TaggerSizes
from medsight.text.models.tagger_tokens import tokenize
from medsight.text.tasks.ner_data import LabelledNote
from medsight.train.config import AtLeastOne, LoopConfig, NonNegative, Positive

PLAN_FILE = "plan.json"
#: the longest chunk a plan picks (tokens)
MAX_CHUNK = 128


class NerPlan(BaseModel):
    """What the data decides before training: the network, its sizes, batch and rate."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    network: str = "bilstm-crf"
    sizes: TaggerSizes = TaggerSizes()
    batch_size: Annotated[int, Field(ge=1)] = 8
    learning_rate: Annotated[float, Field(gt=0)] = 3e-3
    #: words seen fewer times than this in training are <unk> (read by shape and characters)
    min_word_count: Annotated[int, Field(ge=1)] = 2
    word_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    notes: list[str] = []


class NerTrainConfig(LoopConfig):
    """How a tagger is trained; early stopping watches the tuning entity F1 (exact)."""

    model_name: str = "bilstm-crf"
    channels_last: bool = False
    batch_size: AtLeastOne = 8
    learning_rate: Positive = 3e-3
    patience: AtLeastOne = 6
    clip_grad_norm: NonNegative = 5.0
    word_dropout: NonNegative = 0.1
    #: tuning F1 differences below this are noise; ties go to the lower training loss
    f1_tolerance: NonNegative = 0.002
    #: one intra-op thread: a recurrent step is a few small matrix products (the EHR GRU
    #: measured 20x slower with two threads on two busy cores)
    threads: int = 1
    init_weights: Path | None = None


def make_plan(notes: list[LabelledNote]) -> NerPlan:
    """A plan for these notes: chunk length from the token counts (95th percentile, 64-128).

    Chunks stay at most 128 tokens even for long notes: the CRF and the BiLSTM step through
    tokens one at a time, so 32 chunks of 128 train about twice as fast as 8 of 512
    (measured: 0.94 s vs 1.70 s per step, one thread), and prediction reads long notes in
    half-overlapping windows, so nothing is cut at a chunk edge.
    """
    counts = np.array([len(tokenize(n.text)) for n in notes])
    p95 = int(np.percentile(counts, 95))
    max_tokens = int(min(MAX_CHUNK, max(64, 2 ** int(np.ceil(np.log2(max(p95, 1)))))))
    batch = 16
    notes_text = [
        f"{len(notes)} notes; tokens per note median {int(np.median(counts))}, 95th percentile "
        f"{p95}: chunks of {max_tokens} tokens, batches of {batch}"
    ]
    return NerPlan(sizes=TaggerSizes(max_tokens=max_tokens), batch_size=batch, notes=notes_text)


def write_plan(path: Path, plan: NerPlan) -> Path:
    """Write ``plan.json`` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, plan.model_dump_json(indent=2) + "\n")


def read_plan(path: Path) -> NerPlan:
    """Read ``plan.json``.

    Raises:
        InputError: unreadable, or an unknown network or field.
    """
    try:
        plan = NerPlan.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise InputError(f"{path}: not a text-ner plan ({exc.__class__.__name__})") from None
    if plan.network not in NETWORKS:
        raise InputError(f"{path}: unknown network {plan.network!r}; choose {', '.join(NETWORKS)}")
    return plan
