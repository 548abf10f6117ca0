"""`medsight evaluate RUN [--data OTHER.jsonl]` for a text-ner run: tagger and rules side by side.

Scores the run's test notes (``splits.json``'s lines of the training file), or every note of
``--data``, with the tagger and with the rules (`ner_rules`) on the same notes: exact and
overlap P/R/F1 per type and micro with 95% patient-bootstrap CIs (`ner_scores`); for ``phi``
runs also recall per PHI type, masking precision and the count of gold PHI strings each
would leave in the text. Writes ``OUT/metrics.json``, ``OUT/report.html`` and
``OUT/model_card.md``; none of them holds text from a note.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from medsight.console import say
from medsight.errors import InputError
from medsight.evaluate.bootstrap import CI_METHOD
from medsight.evaluate.report.model_card import write_model_card
from medsight.runs.atomic import write_text_atomic
from medsight.tasks.options import EvaluateOptions
from medsight.text.models.tagger_tokens import tokenize
from medsight.text.models.tagger_vocabulary import Vocabulary
from medsight.text.tasks.ner_contract import SPLITS_FILE, NerContract, read_contract
from medsight.text.tasks.ner_data import LabelledNote, read_ner_jsonl
from medsight.text.tasks.ner_report import model_card, render_ner_report
from medsight.text.tasks.ner_rules import rule_spans
from medsight.text.tasks.ner_scores import phi_scores, span_scores
from medsight.text.tasks.ner_train import file_sha256
from medsight.text.tasks.ner_weights import load_tagger

#: above this share of unknown words the report warns that the notes are out of domain
UNKNOWN_WARNING = 0.30


def evaluation_notes(
    run_dir: Path, contract: NerContract, data: Path | None
) -> tuple[list[LabelledNote], str]:
    """The notes to score and a phrase naming them.

    Raises:
        InputError: the training file is gone or changed (without ``--data``), or ``--data``
            lacks the run's span key.
    """
    if data is not None:
        return read_ner_jsonl(Path(data), contract.labels), f"every note of {Path(data).name}"
    source = Path(contract.data)
    if not source.is_file():
        raise InputError(f"{source}: the run's data is gone; pass --data NOTES.jsonl")
    if contract.data_sha256 and file_sha256(source) != contract.data_sha256:
        raise InputError(f"{source}: changed since training; pass --data NOTES.jsonl")
    try:
        lines = set(json.loads((run_dir / SPLITS_FILE).read_text(encoding="utf-8"))["test"])
    except (OSError, ValueError, KeyError):
        raise InputError(
            f"{run_dir / SPLITS_FILE}: missing or unreadable; retrain the run"
        ) from None
    notes = [n for n in read_ner_jsonl(source, contract.labels) if n.line in lines]
    return notes, f"the run's {len(notes)} held-out test notes ({source.name})"


def unknown_warning(share: float) -> str:
    """The sentence the report and the console give when most words are new to the tagger."""
    return (
        f"{share:.0%} of the words in these notes never occurred in the training notes: the "
        "tagger is reading text unlike what it learned from, and its spans (and its misses) "
        "there are not to be trusted without in-domain training data"
    )


def unknown_word_share(vocabulary: Vocabulary, texts: list[str]) -> float:
    """Share of the notes' words (tokens of letters) the tagger never saw in training.

    The tagger reads an unknown word by its shape and spelling alone; when most words are
    unknown (a vocabulary from a few templates, notes from elsewhere) it is outside what it
    learned, and the report says so.
    """
    # words only: numbers and punctuation never have word entries (`Vocabulary`)
    words = [t.text for text in texts for t in tokenize(text) if t.text[0].isalpha()]
    return sum(vocabulary.word(w) == 1 for w in words) / max(len(words), 1)


def evaluate_ner_run(run_dir: Path, options: EvaluateOptions) -> dict[str, Any]:
    """Evaluate a tagger run and write the report (see the module docstring).

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        InputError: a missing run (names the command that makes it), or unusable notes.
    """
    run_dir = Path(run_dir)
    contract = read_contract(run_dir)
    tagger = load_tagger(run_dir)
    notes, described = evaluation_notes(run_dir, contract, options.data)
    if not notes:
        raise InputError(f"{run_dir}: no notes to evaluate on")
    texts = [n.text for n in notes]
    gold = [n.spans for n in notes]
    groups = [n.group for n in notes]
    began = time.perf_counter()
    predicted = {contract.model_name: [tagger.spans(t) for t in texts]}
    model_seconds = time.perf_counter() - began
    rules, rules_note = rule_spans(contract.labels, texts)
    if rules is not None:
        predicted["rules"] = rules
    types = sorted(set(contract.class_names) | {k for g in gold for _, _, k in g})
    systems: dict[str, Any] = {}
    for name, spans in predicted.items():
        scores = span_scores(texts, gold, spans, types, groups, options.n_boot)
        if contract.labels == "phi":
            scores["phi"] = phi_scores(texts, gold, spans, groups, options.n_boot)
        systems[name] = scores
    metrics: dict[str, Any] = {
        "task": contract.task,
        "labels": contract.labels,
        "model": contract.model_name,
        "evaluated_on": described,
        "n_notes": len(notes),
        "n_patients": len(set(groups)),
        "n_gold_spans": sum(len(g) for g in gold),
        "types": types,
        "rules": rules_note,
        "ci_method": CI_METHOD,
        "n_boot": options.n_boot,
        "model_seconds_per_note": model_seconds / len(notes),
        "unknown_word_share": unknown_word_share(tagger.vocabulary, texts),
        "train_seconds": contract.train_seconds,
        "tuning_f1": contract.tuning_f1,
        "systems": systems,
    }
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    card = model_card(contract, metrics)
    write_model_card(out / "model_card.md", card)
    share = metrics["unknown_word_share"]
    warning = unknown_warning(share) if share > UNKNOWN_WARNING else ""
    write_text_atomic(out / "report.html", render_ner_report(metrics, card, warning))
    if warning:
        say(f"warning: {warning}")
    micro = systems[contract.model_name]["exact"]["micro"]["f1"]
    line = f"{contract.model_name}: exact micro F1 {micro['point'] or 0:.3f}"
    if "rules" in systems:
        line += f"; rules {systems['rules']['exact']['micro']['f1']['point'] or 0:.3f}"
    say(f"{line} on {described}; report: {out / 'report.html'}")
    return metrics
