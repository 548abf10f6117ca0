"""Clinical-text throughput: medsight's `text analyze` path against a medSpaCy pipeline with the
same components, and `text deid`, on the synthetic corpus.

Both pipelines read the same notes of ``medsight synth notes`` (chest-CT reports and discharge
summaries) in one process on one thread, best of ``--repeats`` timed passes after a warm-up,
model loading excluded (printed separately). Each pass does the whole job of turning text
into JSON-ready records:

* medsight: ``TextPipeline.pipe`` (rule sections, sentences, targets, sizes, ConText) and
  ``AnalyzedNote.to_json``; "+ model" adds a trained text-classify run's labels per note
  (``LoadedRun.score_text``: tokenise, encode, calibrated probabilities), as ``text analyze
  --model RUN`` does without its per-note temporary file.
* medSpaCy 1.3.1: ``medspacy.load`` with PyRuSH sentences, the TargetMatcher given medsight's
  lexicon as TargetRules (every phrase, every token pattern, and the size regex as a regex
  rule), ConText with its default rules and the Sectionizer with its default rules; then
  each entity's span, type and ConText flags as a dict.

Quality on the reports' gold annotations, both pipelines scored by `medsight.text.evaluate`:
entity F1 (exact and overlap, micro over the types the reports' gold annotates: finding,
device, anatomy, procedure, measurement) and assertion F1 on the finding and device entities
found (macro over each attribute's values). The goal: >= 2x medSpaCy's notes/s at equal or
better F1.

The synthetic gold was written alongside medsight's rules, so it flatters them; text no one
here wrote is the radlabels reports (``--radlabels DIR``, default ``../shared/data/text/
radlabels`` when present): both pipelines' entities go through the same report labeller
(`medsight.text.labeller`) and are compared with the reports' silver labels (agreement where
the silver labels a finding, Cohen's kappa, pooled over the 48 findings, report-bootstrap
CIs); notes/s is timed there too. medSpaCy's sections are mapped onto the labeller's names by
category (history of present illness / past medical history -> history, observation and
plan -> impression, imaging -> technique, labs and studies -> findings). `text deid`
(``deidentify_text``, surrogate mode) on the discharge summaries has no medSpaCy
counterpart: its notes/s is printed with its recall, precision and leaked gold strings.

    .venv/bin/python bench/text_throughput.py [--reports 300] [--discharge 300] [--repeats 3]
        [--model RUN | --no-model] [--epochs 3] [--radlabels DIR] [--out runs/bench-text]

medSpaCy and its helpers are not in medsight's dependencies; install them WITHOUT their
dependencies (theirs would downgrade numpy and spaCy):
``pip install --no-deps -r bench/requirements-medspacy.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medsight.text.evaluate.assertion_scores import assertion_scores
from medsight.text.evaluate.deid_scores import deid_scores
from medsight.text.evaluate.entity_scores import entity_scores
from medsight.text.io.note import Note

INSTALL = "pip install --no-deps -r bench/requirements-medspacy.txt"
THROUGHPUT_GOAL = 2.0
#: entity types the synthetic reports' gold annotates (it has no medications)
SCORED_TYPES = ("finding", "device", "anatomy", "procedure", "measurement")
ASSERTION_TYPES = ("finding", "device")
DEID_KEY = "bench-text-throughput-key"
RADLABELS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "text" / "radlabels"
#: medSpaCy's default section categories -> the labeller's section names
MEDSPACY_SECTIONS = {
    "history_of_present_illness": "history",
    "past_medical_history": "history",
    "reason_for_examination": "history",
    "indication": "history",
    "observation_and_plan": "impression",
    "impression": "impression",
    "imaging": "technique",
    "labs_and_studies": "findings",
    "findings": "findings",
}


def lscpu_field(name: str) -> str:
    """One field of ``lscpu`` ("?" when unavailable)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "?"
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return "?"


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``run``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# --- medSpaCy, the reference ---------------------------------------------------------------


def medspacy_pipeline() -> Any:
    """medSpaCy with PyRuSH, TargetMatcher (medsight's lexicon), ConText and Sectionizer."""
    try:
        from loguru import logger

        logger.remove()  # medSpaCy logs every rule file it loads
        import medspacy
        from medspacy.target_matcher import TargetRule
    except ImportError:
        sys.exit(f"medSpaCy 1.3.1 is not installed; run: {INSTALL}")
    from medsight.text.pipeline.lexicon import load_lexicon
    from medsight.text.pipeline.measurements import MEASUREMENT

    nlp = medspacy.load(
        medspacy_enable=[
            "medspacy_pyrush",
            "medspacy_target_matcher",
            "medspacy_context",
            "medspacy_sectionizer",
        ]
    )
    lexicon = load_lexicon()
    rules = [
        TargetRule(phrase, type_, attributes=None, metadata={"concept": concept})
        for type_, concept, phrase in lexicon.phrases
    ]
    rules += [
        TargetRule(
            f"{concept} pattern", type_, pattern=_regex(pattern), metadata={"concept": concept}
        )
        for type_, concept, pattern in lexicon.patterns
    ]
    rules.append(TargetRule("size", "measurement", pattern="(?i)" + MEASUREMENT.pattern))
    nlp.get_pipe("medspacy_target_matcher").add(rules)
    return nlp


def _regex(pattern: Any) -> Any:
    """A lexicon word pattern as medSpaCy takes it: a token pattern list, or a regex string."""
    if isinstance(pattern, list):
        return pattern
    regex = pattern.regex
    return ("(?i)" if regex.flags & re.IGNORECASE else "") + regex.pattern


def medspacy_records(nlp: Any, texts: Sequence[str]) -> list[list[dict[str, Any]]]:
    """Each note's entities as dicts (span, type and the ConText flags as medsight's values)."""
    out = []
    for doc in nlp.pipe(texts, batch_size=64):
        out.append(
            [
                {
                    "start": ent.start_char,
                    "end": ent.end_char,
                    "type": ent.label_,
                    "negation": "negated" if ent._.is_negated else "affirmed",
                    "certainty": "uncertain" if ent._.is_uncertain else "certain",
                    "temporality": "hypothetical"
                    if ent._.is_hypothetical
                    else "historical"
                    if ent._.is_historical
                    else "recent",
                    "experiencer": "other" if ent._.is_family else "patient",
                    "section": MEDSPACY_SECTIONS.get(ent._.section_category or "", "other")
                    if ent._.section_category
                    else None,
                    "concept": (ent._.target_rule.metadata or {}).get("concept", ent.label_),
                    "text": ent.text,
                }
                for ent in doc.ents
            ]
        )
    return out


# --- medsight ------------------------------------------------------------------------------


def medsight_records(
    pipeline: Any, notes: Sequence[Note], classifier: Any = None
) -> list[list[dict[str, Any]]]:
    """Each note's analysis as `text analyze` writes it (entities kept for scoring)."""
    out = []
    for note, analyzed in zip(notes, pipeline.pipe(notes), strict=True):
        if classifier is not None:
            result = classifier.score_text(note.text, with_entities=False)
            analyzed.labels = {name: label.label for name, label in result.labels.items()}
        out.append(analyzed.to_json()["entities"])
    return out


def trained_classifier(model: Path | None, radiology: Path, out: Path, epochs: int) -> Any:
    """A loaded text-classify run: ``model`` if given, else a small CNN trained here."""
    import medsight.text.tasks.classify  # noqa: F401  (registers text-classify)
    from medsight.tasks import get_task
    from medsight.tasks.options import TrainOptions

    task = get_task("text-classify")
    if model is None:
        model = out / "text-classify-cnn"
        if not (model / "model.json").exists():
            print(f"training a text-classify CNN on {radiology.name} ({epochs} epochs) ...")
            options = TrainOptions(model_name="cnn", max_epochs=epochs, seed=0)
            task.train(radiology, model, options)
    return task.load(model)


def radlabels_agreement(
    ours: Any, theirs: Any, folder: Path, repeats: int
) -> dict[str, dict[str, Any]]:
    """Both pipelines through the report labeller against radlabels' silver labels."""
    from medsight.text.evaluate.agreement_per_finding import agreement_per_finding
    from medsight.text.labeller.findings import FINDINGS
    from medsight.text.labeller.reference_labels import read_reference_labels
    from medsight.text.labeller.report_labels import label_report
    from medsight.text.pipeline.annotations import AnalyzedNote, Entity

    notes = [Note(p.stem, p.read_text()) for p in sorted((folder / "reports").glob("*.txt"))]
    silver = read_reference_labels(folder / "labels.json")
    texts = [n.text for n in notes]
    out = {}
    for name, run in (
        ("medsight", lambda: medsight_records(ours, notes)),
        ("medSpaCy", lambda: medspacy_records(theirs, texts)),
    ):
        seconds = best_seconds(run, repeats)
        labels = {}
        for note, records in zip(notes, run(), strict=True):
            fields = Entity.__dataclass_fields__
            entities = [Entity(**{k: v for k, v in r.items() if k in fields}) for r in records]
            labels[note.note_id] = label_report(AnalyzedNote(note.note_id, entities=entities))
        agreement = agreement_per_finding(labels, silver, FINDINGS, n_boot=200)
        out[name] = {"notes_per_s": len(notes) / seconds, "overall": agreement["overall"]}
    return out


# --- scoring -------------------------------------------------------------------------------


def quality(gold: Sequence[Sequence[dict]], predicted: Sequence[Sequence[dict]]) -> dict:
    """Entity F1 (exact, overlap) and assertion macro-F1 per attribute on the gold."""
    entities = entity_scores(gold, predicted, SCORED_TYPES)
    assertion = assertion_scores(gold, predicted, ASSERTION_TYPES)
    return {
        "entity_f1_exact": entities["exact"]["micro"]["f1"],
        "entity_f1_overlap": entities["overlap"]["micro"]["f1"],
        "per_type_f1_exact": {t: r["f1"] for t, r in entities["exact"]["per_type"].items()},
        "assertion_matched": assertion["n_matched"],
        "assertion_macro_f1": {a: r["macro_f1"] for a, r in assertion["attributes"].items()},
        "assertion_f1": {
            a: {v: r["f1"] for v, r in row["values"].items()}
            for a, row in assertion["attributes"].items()
        },
    }


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=300)
    parser.add_argument("--discharge", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, default=None, help="a trained text-classify run")
    parser.add_argument("--no-model", action="store_true", help="skip the rules + model pass")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the CNN trained here")
    parser.add_argument("--radlabels", type=Path, default=RADLABELS, help="radlabels folder")
    parser.add_argument("--out", type=Path, default=None, help="corpus, model and results.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-text-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {lscpu_field('Model name')}, {lscpu_field('CPU(s)')} CPUs; 1 thread used")
    print(f"load average (1/5/15 min) at start: {load_average()}")

    from medsight.text.synth.notes_corpus import write_notes_corpus

    corpus = out / "corpus"
    if not (corpus / "manifest.json").exists():
        write_notes_corpus(
            corpus, args.seed, reports=args.reports, discharge=args.discharge, feedback=0
        )
    reports = read_jsonl(corpus / "radiology.jsonl")
    summaries = read_jsonl(corpus / "discharge.jsonl")
    notes = [Note(r["note_id"], r["text"], kind=r["kind"]) for r in reports + summaries]
    texts = [n.text for n in notes]
    chars = sum(len(t) for t in texts)
    print(
        f"corpus: {len(reports)} chest-CT reports + {len(summaries)} discharge summaries "
        f"({chars / len(texts):.0f} characters a note), seed {args.seed}\n"
    )

    from medsight.text.pipeline.analyze import TextPipeline

    started = time.perf_counter()
    ours = TextPipeline()
    load_ours = time.perf_counter() - started
    started = time.perf_counter()
    theirs = medspacy_pipeline()
    load_theirs = time.perf_counter() - started
    medsight_records(ours, notes[:20])
    medspacy_records(theirs, texts[:20])

    t_ours = best_seconds(lambda: medsight_records(ours, notes), args.repeats)
    t_theirs = best_seconds(lambda: medspacy_records(theirs, texts), args.repeats)

    gold = [r["entities"] for r in reports]
    q_ours = quality(gold, medsight_records(ours, notes[: len(reports)]))
    q_theirs = quality(gold, medspacy_records(theirs, texts[: len(reports)]))

    t_model = None
    if not args.no_model:
        classifier = trained_classifier(args.model, corpus / "radiology.jsonl", out, args.epochs)
        classifier.score_text(texts[0], with_entities=False)
        t_model = best_seconds(lambda: medsight_records(ours, notes, classifier), args.repeats)

    from medsight.text.deid.deidentify import deidentify_text

    discharge_notes = [r["text"] for r in summaries]

    def deid_all() -> list[Any]:
        return [
            deidentify_text(r["text"], key=DEID_KEY, patient=r["subject_id"], source=r["note_id"])
            for r in summaries
        ]

    deid_all()
    t_deid = best_seconds(deid_all, args.repeats)
    results = deid_all()
    deid = deid_scores(
        discharge_notes,
        [r["phi"] for r in summaries],
        [d.spans for d in results],
        [d.text for d in results],
    )

    n = len(notes)
    rate_ours, rate_theirs = n / t_ours, n / t_theirs
    print(f"{'':38s}{'medsight':>12s}{'medSpaCy':>12s}{'ratio':>9s}")
    print(f"{'pipeline load s':38s}{load_ours:12.2f}{load_theirs:12.2f}")
    print(
        f"{'analyze notes/s (rules)':38s}{rate_ours:12.1f}{rate_theirs:12.1f}"
        f"{rate_ours / rate_theirs:8.2f}x"
    )
    if t_model is not None:
        rate_model = n / t_model
        print(
            f"{'analyze notes/s (rules + CNN labels)':38s}{rate_model:12.1f}{rate_theirs:12.1f}"
            f"{rate_model / rate_theirs:8.2f}x"
        )
    print(
        f"{'entity F1 exact (micro)':38s}{_fmt(q_ours['entity_f1_exact']):>12s}"
        f"{_fmt(q_theirs['entity_f1_exact']):>12s}"
    )
    print(
        f"{'entity F1 overlap (micro)':38s}{_fmt(q_ours['entity_f1_overlap']):>12s}"
        f"{_fmt(q_theirs['entity_f1_overlap']):>12s}"
    )
    for t in SCORED_TYPES:
        print(
            f"{'  exact F1 ' + t:38s}{_fmt(q_ours['per_type_f1_exact'][t]):>12s}"
            f"{_fmt(q_theirs['per_type_f1_exact'][t]):>12s}"
        )
    print(
        f"{'entities matched for assertion':38s}{q_ours['assertion_matched']:12d}"
        f"{q_theirs['assertion_matched']:12d}"
    )
    for attribute, values in q_ours["assertion_f1"].items():
        print(
            f"{'assertion macro-F1 ' + attribute:38s}"
            f"{_fmt(q_ours['assertion_macro_f1'][attribute]):>12s}"
            f"{_fmt(q_theirs['assertion_macro_f1'][attribute]):>12s}"
        )
        for value in values:
            print(
                f"{'  F1 ' + value:38s}{_fmt(q_ours['assertion_f1'][attribute][value]):>12s}"
                f"{_fmt(q_theirs['assertion_f1'][attribute][value]):>12s}"
            )
    ratio = rate_ours / rate_theirs
    better = q_ours["entity_f1_exact"] >= q_theirs["entity_f1_exact"] and all(
        (q_ours["assertion_macro_f1"][a] or 0) >= (q_theirs["assertion_macro_f1"][a] or 0)
        for a in q_ours["assertion_macro_f1"]
    )
    verdict = "MET" if ratio >= THROUGHPUT_GOAL and better else "NOT MET"
    print(f"goal >= {THROUGHPUT_GOAL}x at equal or better F1: {verdict} ({ratio:.2f}x)")
    print(
        f"\ntext deid (surrogates) on {len(summaries)} discharge summaries: "
        f"{len(summaries) / t_deid:.1f} notes/s; recall {_fmt(deid['recall'])}, precision "
        f"{_fmt(deid['precision'])}, leaked gold strings {deid['leaked']} of {deid['n_gold']}"
    )
    real = None
    if (args.radlabels / "labels.json").exists():
        real = radlabels_agreement(ours, theirs, args.radlabels, args.repeats)
        print(
            f"\nradlabels: {args.radlabels.resolve().name}'s 1,000 chest X-ray reports, "
            "both pipelines through the same report labeller, against SILVER labels"
        )
        print(f"{'':38s}{'medsight':>12s}{'medSpaCy':>12s}{'ratio':>9s}")
        a, b = real["medsight"], real["medSpaCy"]
        print(
            f"{'notes/s (rules)':38s}{a['notes_per_s']:12.1f}{b['notes_per_s']:12.1f}"
            f"{a['notes_per_s'] / b['notes_per_s']:8.2f}x"
        )
        for metric, label in (
            ("accuracy_mentioned", "agreement where silver labels"),
            ("kappa", "Cohen's kappa (48 findings pooled)"),
            ("f1_present", "F1 present"),
            ("f1_present_or_uncertain", "F1 present or uncertain"),
        ):
            x, y = a["overall"][metric], b["overall"][metric]
            intervals = f"{_fmt(x['low'])}-{_fmt(x['high'])} vs {_fmt(y['low'])}-{_fmt(y['high'])}"
            print(f"{label:38s}{_fmt(x['point']):>12s}{_fmt(y['point']):>12s}   95% CI {intervals}")
    else:
        print(f"\nradlabels reports not found at {args.radlabels}: external check skipped")
    print(f"\n=== CPU: {lscpu_field('Model name')}; load average at end {load_average()} ===")
    record = {
        "cpu": lscpu_field("Model name"),
        "notes": n,
        "seconds": {"medsight": t_ours, "medspacy": t_theirs, "medsight_model": t_model},
        "load_seconds": {"medsight": load_ours, "medspacy": load_theirs},
        "ratio": ratio,
        "quality": {"medsight": q_ours, "medspacy": q_theirs},
        "deid": {"notes_per_s": len(summaries) / t_deid, **deid},
        "radlabels": real,
    }
    (out / "results.json").write_text(json.dumps(record, indent=1))
    print(f"results.json: {out / 'results.json'}")


if __name__ == "__main__":
    main()
