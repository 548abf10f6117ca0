"""ConText assertion: each value on hand-written sentences, pseudo-triggers, scope ends,
section rules, and accuracy on the ConText-style sentence set (context_sentences.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.text.pipeline.analyze import TextPipeline
from medsight.text.pipeline.assertion import ATTRIBUTES, assert_concept

SENTENCES = Path(__file__).with_name("context_sentences.csv")


def _context(pipeline: TextPipeline, text: str, concept: str) -> tuple[str, ...]:
    values = assert_concept(pipeline, text, concept, "test")
    return tuple(values[a] for a in ATTRIBUTES)


@pytest.mark.parametrize(
    ("text", "concept", "expected"),
    [
        (
            "No pleural effusion or pneumothorax.",
            "pneumothorax",
            ("negated", "certain", "recent", "patient"),
        ),
        ("Pneumothorax is not seen.", "Pneumothorax", ("negated", "certain", "recent", "patient")),
        (
            "Pneumonia cannot be excluded.",
            "Pneumonia",
            ("affirmed", "uncertain", "recent", "patient"),
        ),
        (
            "Atelectasis versus pneumonia.",
            "Atelectasis",
            ("affirmed", "uncertain", "recent", "patient"),
        ),
        ("Rule out pneumonia.", "pneumonia", ("affirmed", "uncertain", "recent", "patient")),
        (
            "History of pneumothorax.",
            "pneumothorax",
            ("affirmed", "certain", "historical", "patient"),
        ),
        ("Status post CABG.", "CABG", ("affirmed", "certain", "historical", "patient")),
        ("Mother had lung cancer.", "lung cancer", ("affirmed", "certain", "recent", "other")),
        (
            "Breast cancer in her sister.",
            "Breast cancer",
            ("affirmed", "certain", "recent", "other"),
        ),
        (
            "If pneumonia develops, repeat imaging.",
            "pneumonia",
            ("affirmed", "certain", "hypothetical", "patient"),
        ),
        (
            "Should pneumonia be suspected, repeat.",
            "pneumonia",
            ("affirmed", "certain", "hypothetical", "patient"),
        ),
    ],
)
def test_each_assertion_value(
    pipeline: TextPipeline, text: str, concept: str, expected: tuple
) -> None:
    assert _context(pipeline, text, concept) == expected


@pytest.mark.parametrize(
    ("text", "concept"),
    [
        ("There is no change in the left pleural effusion.", "pleural effusion"),
        ("No interval increase in the right pneumothorax.", "pneumothorax"),
        ("Not only pneumonia but also effusion.", "pneumonia"),
        ("Gram negative bacteremia.", "bacteremia"),
        ("No pneumothorax, but a small left pleural effusion is present.", "pleural effusion"),
        ("No consolidation; there is mild cardiomegaly.", "cardiomegaly"),
        ("There is no effusion, although a small pneumothorax persists.", "pneumothorax"),
        ("NG tube with the tip not identified.", "NG tube"),
    ],
)
def test_pseudo_triggers_and_scope_ends_leave_the_finding_affirmed(
    pipeline: TextPipeline, text: str, concept: str
) -> None:
    assert _context(pipeline, text, concept)[0] == "affirmed"


def test_current_words_bring_a_prior_finding_back_to_recent(pipeline: TextPipeline) -> None:
    assert _context(pipeline, "Prior nodule unchanged: 8 mm.", "nodule")[2] == "recent"
    assert _context(pipeline, "The previously noted effusion persists.", "effusion")[2] == "recent"
    text = "Small effusion is unchanged from the prior examination."
    assert _context(pipeline, text, "effusion")[2] == "recent"
    assert _context(pipeline, "Previously seen nodule.", "nodule")[2] == "historical"


def test_should_is_hypothetical_only_at_the_start(pipeline: TextPipeline) -> None:
    text = "Skin fold should not be mistaken for pneumothorax."
    assert _context(pipeline, text, "pneumothorax") == ("negated", "certain", "recent", "patient")


def test_a_month_is_not_a_possibility(pipeline: TextPipeline) -> None:
    text = "Presented on May 14 with cough. There may be a small effusion."
    entities = {e.text: e for e in pipeline.analyze_text(text).entities}
    assert entities["cough"].certainty == "certain"
    assert entities["effusion"].certainty == "uncertain"


def test_sections_set_temporality_and_experiencer(pipeline: TextPipeline) -> None:
    text = (
        "INDICATION: Rule out pneumonia.\n\nPAST MEDICAL HISTORY:\n1. Hypertension\n\n"
        "FAMILY HISTORY: Stroke.\n\nDISCHARGE INSTRUCTIONS:\nWatch your blood sugar; fever.\n"
    )
    entities = {e.text: e for e in pipeline.analyze_text(text).entities}
    # an indication states the current question: not a past condition
    assert (entities["pneumonia"].temporality, entities["pneumonia"].certainty) == (
        "recent",
        "uncertain",
    )
    assert entities["Hypertension"].temporality == "historical"
    assert entities["Hypertension"].section == "past_medical_history"
    assert entities["Stroke"].experiencer == "other"
    assert entities["fever"].temporality == "hypothetical"


def test_anatomy_is_located_not_asserted(pipeline: TextPipeline) -> None:
    entities = pipeline.analyze_text("No nodule in the right upper lobe.").entities
    lobe = next(e for e in entities if e.type == "anatomy")
    nodule = next(e for e in entities if e.type == "finding")
    assert (lobe.concept, lobe.negation) == ("right upper lobe", "affirmed")
    assert nodule.negation == "negated"


def test_a_concept_missing_from_its_text_names_the_place_not_the_text(
    pipeline: TextPipeline,
) -> None:
    with pytest.raises(InputError) as error:
        assert_concept(pipeline, "Secret Smith has no effusion.", "pneumothorax", "f.csv: row 3")
    assert str(error.value) == "f.csv: row 3: concept not found in text"


def test_accuracy_on_the_context_sentence_set(pipeline: TextPipeline) -> None:
    """91 ConText-style sentences written with their expected values before the rules were
    run on them (first run: negation 89, certainty 91, temporality 90, experiencer 91)."""
    rows = list(csv.DictReader(SENTENCES.open(encoding="utf-8")))
    right = dict.fromkeys(ATTRIBUTES, 0)
    all_four = 0
    for number, row in enumerate(rows, 1):
        got = assert_concept(pipeline, row["text"], row["concept"], f"row {number}")
        hits = [got[a] == row[a] for a in ATTRIBUTES]
        all_four += all(hits)
        for attribute, hit in zip(ATTRIBUTES, hits, strict=True):
            right[attribute] += hit
    accuracy = {a: right[a] / len(rows) for a in ATTRIBUTES}
    print(f"{len(rows)} sentences: {accuracy}, all four right {all_four}/{len(rows)}")
    assert len(rows) == 91
    assert min(accuracy.values()) >= 0.97
    assert all_four / len(rows) >= 0.95


def test_recommended_follow_up_and_compared_procedures(pipeline: TextPipeline) -> None:
    text = (
        "COMPARISON: CT chest of 1/28/20.\n\nIMPRESSION: 2 cm mass. Recommend PET-CT and tissue "
        "sampling. Follow-up CT in 6 months. Enteric tube advancement is recommended."
    )
    entities = {e.text: e for e in pipeline.analyze_text(text).entities}
    assert entities["CT chest"].temporality == "historical"
    assert entities["PET-CT"].temporality == "hypothetical"
    assert entities["tissue sampling"].temporality == "hypothetical"
    assert entities["Follow-up CT"].temporality == "hypothetical"
    # recommendation words plan procedures; they do not make a device or finding hypothetical
    assert entities["Enteric tube"].temporality == "recent"
    assert entities["mass"].temporality == "recent"
    dated_outside_comparison = pipeline.analyze_text(
        "CT chest of 1/28/20 showed a nodule."
    ).entities
    assert dated_outside_comparison[0].temporality == "historical"
