"""`medsight train DATA.jsonl --task text-ner [--labels entities|phi] -o RUN`.

Reads and checks the notes (`ner_data`), splits patients 70/15/15 (seeded), plans (or reuses
``RUN/plan.json``), builds the vocabularies on the training notes (no name or place from
inside a gold PHI span: `phi_words`), fits through the one loop (`ner_fit`) with per-epoch
logs and resumable state in RUN, and writes ``model.safetensors``, ``vocabulary.json``,
``splits.json`` and ``model.json``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from functools import partial
from pathlib import Path

from medsight.console import progress_bar, say
from medsight.errors import InputError
from medsight.runs.atomic import write_text_atomic
from medsight.runs.contract import WEIGHTS
from medsight.runs.weights import save_weights, transfer_preparation
from medsight.tasks.options import TrainOptions, refuse_imaging_options
from medsight.text.models.tagger_inputs import Chunk, encode_tokens
from medsight.text.models.tagger_sizes import NETWORKS
from medsight.text.models.tagger_tokens import Token, misaligned_spans, tag_names, tokenize
from medsight.text.models.tagger_vocabulary import Vocabulary, word_key
from medsight.text.tasks.ner_config import (
    PLAN_FILE,
    NerPlan,
    NerTrainConfig,
    make_plan,
    read_plan,
    write_plan,
)
from medsight.text.tasks.ner_contract import (
    SPLITS_FILE,
    VOCABULARY_FILE,
    NerContract,
    library_versions,
    write_contract,
)
from medsight.text.tasks.ner_data import LabelledNote, labels_key, read_ner_jsonl, split_notes
from medsight.text.tasks.ner_fit import fit_tagger
from medsight.text.tasks.ner_weights import new_network
from medsight.train.run_folder import fit_in_run_folder

#: the training wall-time budget when --max-minutes is not given
DEFAULT_MAX_MINUTES = 10.0
#: model names --model accepts (plus the networks' own names)
MODEL_ALIASES = {"bilstm": "bilstm-crf", "transformer": "transformer-crf"}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (the contract records which data trained the run)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def network_name(requested: str | None, plan: NerPlan) -> str:
    """``--model`` (``bilstm``, ``transformer`` or a network name), else the plan's network.

    Raises:
        InputError: an unknown name.
    """
    if not requested:
        return plan.network
    name = MODEL_ALIASES.get(requested, requested)
    if name not in NETWORKS:
        raise InputError(f"--model {requested}: text-ner networks are bilstm, transformer")
    return name


def _plan(notes: list[LabelledNote], run_dir: Path, replan: bool) -> NerPlan:
    path = run_dir / PLAN_FILE
    if path.is_file() and not replan:
        say(f"reusing {path} (--replan to remake it)")
        return read_plan(path)
    plan = make_plan(notes)
    write_plan(path, plan)
    return plan


def phi_words(
    notes: list[LabelledNote], tokens: dict[int, list[Token]], min_count: int
) -> set[str]:
    """Words kept out of a PHI tagger's vocabulary, so ``vocabulary.json`` names no one.

    A token with a letter inside a gold PHI span (a name, a street, a town) never gets a word
    entry, unless its word also occurs ``min_count`` times outside PHI spans (an ordinary
    word such as "street" or "general"). Digits are folded to ``0`` and punctuation is not
    identifying, so numbers and separators inside PHI keep their entries: banning them made
    half of a discharge summary's tokens unknown, and "unknown word" then read as "PHI".
    """
    phi: set[str] = set()
    outside: Counter[str] = Counter()
    for i, note_tokens in tokens.items():
        for t in note_tokens:
            key = word_key(t.text)
            if any(s < t.end and t.start < e for s, e, _ in notes[i].spans):
                if any(c.isalpha() for c in t.text):
                    phi.add(key)
            else:
                outside[key] += 1
    return {w for w in phi if outside[w] < min_count}


def _types(notes: list[LabelledNote], train: list[int]) -> list[str]:
    types = sorted({kind for i in train for _, _, kind in notes[i].spans})
    if not types:
        raise InputError("the training notes have no spans of the chosen --labels key")
    return types


def train_ner(data: Path, run_dir: Path, options: TrainOptions) -> None:
    """Train a tagger run from a JSONL of notes with spans (see the module docstring).

    Raises:
        InputError: other tasks' options, a bad ``--labels``/``--model``, unusable data,
            or ``--resume`` with nothing (or other settings) to resume.
    """
    refuse_imaging_options(options, "text-ner", folds=True)
    key = labels_key(options.labels)
    data = Path(data)
    run_dir = Path(run_dir)
    notes = read_ner_jsonl(data, key)
    splits = split_notes(notes, options.seed)
    if options.resume and not (run_dir / "checkpoints" / "last.json").is_file():
        raise InputError(f"{run_dir}: nothing to resume (no checkpoints/ from an earlier run)")
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = _plan(notes, run_dir, options.replan)
    network = network_name(options.model_name, plan)
    types = _types(notes, splits["train"])
    tags = tag_names(types)
    tag_index = {t: i for i, t in enumerate(tags)}
    tokens = {i: tokenize(notes[i].text) for i in splits["train"]}
    inside = phi_words(notes, tokens, plan.min_word_count) if key == "phi" else set()
    vocabulary = Vocabulary.build(
        (t.text for i in tokens for t in tokens[i]), plan.min_word_count, exclude=inside
    )
    vocabulary.save(run_dir / VOCABULARY_FILE)
    train_chunks: list[Chunk] = []
    misaligned = 0
    for i, note_tokens in tokens.items():
        # training keeps only the types it knows (a span of another type is O)
        spans = notes[i].spans
        misaligned += misaligned_spans(note_tokens, spans)
        train_chunks += encode_tokens(
            note_tokens, vocabulary, plan.sizes.char_width, plan.sizes.max_tokens, tag_index, spans
        )
    write_text_atomic(
        run_dir / SPLITS_FILE,
        json.dumps({s: [notes[i].line for i in idx] for s, idx in splits.items()}) + "\n",
    )
    config = NerTrainConfig(
        model_name=network,
        max_epochs=options.max_epochs,
        batch_size=options.batch_size or plan.batch_size,
        learning_rate=options.learning_rate or plan.learning_rate,
        seed=options.seed,
        max_minutes=options.max_minutes or DEFAULT_MAX_MINUTES,
        bf16=bool(options.bf16),
        word_dropout=plan.word_dropout,
        init_weights=options.init_weights,
    )
    tuning = splits["tuning"]
    say(
        f"{len(notes)} notes ({', '.join(f'{s} {len(v)}' for s, v in splits.items())}); "
        f"{len(types)} {key} types; {len(train_chunks)} training chunks"
    )
    fit = partial(
        fit_tagger,
        lambda: new_network(network, plan.sizes, tags, vocabulary),
        vocabulary,
        tags,
        train_chunks,
        [notes[i].text for i in tuning],
        [notes[i].spans for i in tuning],
        config,
        config.word_dropout,
        prepare_model=transfer_preparation(options.init_weights),
    )
    with progress_bar() as progress:
        bar = progress.add_task(f"training {network}", total=config.max_epochs)

        def on_epoch(row: dict[str, float]) -> None:
            progress.update(
                bar,
                completed=int(row["epoch"]),
                description=f"training {network} (tuning F1 {row['val_f1']:.3f})",
            )

        result = fit_in_run_folder(run_dir, config, fit, options.resume, on_epoch)
    save_weights(result.model, run_dir / WEIGHTS)
    best = [row for row in result.history if int(row["epoch"]) == result.best_epoch]
    tuning_f1 = float(best[0]["val_f1"]) if best else None
    contract = NerContract(
        model_name=network,
        class_names=types,
        labels=key,
        tags=tags,
        data=str(data),
        data_sha256=file_sha256(data),
        seed=options.seed,
        tuning_f1=tuning_f1,
        best_epoch=result.best_epoch,
        train_seconds=result.seconds,
        misaligned_train_spans=misaligned,
        versions=library_versions(),
    )
    write_contract(run_dir, contract)
    (run_dir / "model.onnx").unlink(missing_ok=True)  # an export of earlier weights
    say(
        f"{network}: best tuning entity F1 {tuning_f1 or 0:.3f} (epoch {result.best_epoch}); "
        f"{run_dir / WEIGHTS}"
    )
