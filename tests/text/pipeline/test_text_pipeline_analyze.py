"""TextPipeline end to end: a note in, sections, sentences and entities with context out;
pipe == analyze; context_of for spans found by someone else."""

from __future__ import annotations

import json
from pathlib import Path

from medsight.text.io.note import Note
from medsight.text.pipeline.analyze import TextPipeline, default_pipeline

REPORT = (
    "INDICATION: Rule out pneumonia.\n\n"
    "FINDINGS: There is a 9 mm nodule in the RUL. No pleural effusion or pneumothorax. "
    "Heart is mildly enlarged. ET tube terminates 4 cm above the carina.\n\n"
    "IMPRESSION: Possible atelectasis. Father with lung cancer."
)


def test_a_report_gives_its_entities_with_context(pipeline: TextPipeline) -> None:
    analyzed = pipeline.analyze(Note(note_id="r1", text=REPORT))
    got = {
        e.text: (e.type, e.concept, e.section, e.negation, e.certainty, e.experiencer)
        for e in analyzed.entities
    }
    assert got["pneumonia"] == (
        "finding",
        "pneumonia",
        "history",
        "affirmed",
        "uncertain",
        "patient",
    )
    assert got["nodule"][:3] == ("finding", "lung_nodule_or_mass", "findings")
    assert got["RUL"][:2] == ("anatomy", "right upper lobe")
    assert got["pleural effusion"][3] == got["pneumothorax"][3] == "negated"
    assert got["Heart is mildly enlarged"][1:4] == ("cardiomegaly", "findings", "affirmed")
    assert got["ET tube"][:2] == ("device", "endotracheal_tube")
    assert got["atelectasis"][2:5] == ("impression", "affirmed", "uncertain")
    assert got["lung cancer"][5] == "other"
    nodule = next(e for e in analyzed.entities if e.text == "nodule")
    assert nodule.value_mm == 9.0
    for entity in analyzed.entities:
        assert REPORT[entity.start : entity.end] == entity.text
        start, end = analyzed.sentences[entity.sentence]
        assert start <= entity.start < entity.end <= end
    assert [s.name for s in analyzed.sections] == ["history", "findings", "impression"]


def test_pipe_gives_what_analyze_gives_in_order(pipeline: TextPipeline) -> None:
    notes = [Note(note_id=f"n{i}", text=REPORT.replace("9 mm", f"{i + 5} mm")) for i in range(7)]
    piped = list(pipeline.pipe(notes, batch_size=3))
    assert [a.note_id for a in piped] == [n.note_id for n in notes]
    assert [a.to_json() for a in piped] == [pipeline.analyze(n).to_json() for n in notes]
    json.dumps(piped[0].to_json())  # JSON-ready


def test_real_reports_are_analysed_and_their_negations_found(
    pipeline: TextPipeline, radlabels_reports: Path
) -> None:
    text = (radlabels_reports / "synth_0002.txt").read_text(encoding="utf-8")
    analyzed = pipeline.analyze_text(text, "synth_0002")
    negated = {e.concept for e in analyzed.entities if e.negation == "negated"}
    uncertain = {e.concept for e in analyzed.entities if e.certainty == "uncertain"}
    assert negated == {"pleural_effusion", "pneumothorax"}
    assert {"pneumonia", "atelectasis", "pulmonary_edema"} <= uncertain
    assert "cardiomegaly" in {e.concept for e in analyzed.entities if e.certainty == "certain"}


def test_context_of_spans_found_elsewhere(pipeline: TextPipeline) -> None:
    text = "HISTORY: Mother had asthma.\nFINDINGS: No focal airspace disease. Mild widening."
    spans = [
        (text.index("focal airspace disease"), text.index(". Mild"), "finding"),
        (text.index("asthma"), text.index("asthma") + 6, "finding"),
        (text.index("widening"), text.index("widening") + 8, "finding"),
    ]
    first, second, third = pipeline.context_of(text, spans)
    # given order is kept; a known phrase gets its concept, anything else its lower text
    assert (first.text, first.negation, first.section) == (
        "focal airspace disease",
        "negated",
        "findings",
    )
    assert (second.concept, second.experiencer, second.section) == ("asthma", "other", "history")
    assert (third.concept, third.negation) == ("widening", "affirmed")
    assert pipeline.context_of(text, []) == []


def test_the_default_pipeline_is_built_once() -> None:
    assert default_pipeline() is default_pipeline()
