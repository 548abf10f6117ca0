"""The image-vs-report discrepancy list on hand-made reports and predictions."""

import pytest

from medsight.errors import InputError
from medsight.text.crosscheck.discrepancies import (
    ImagePrediction,
    classify_case,
    find_discrepancies,
)
from medsight.text.crosscheck.discrepancy_section import discrepancy_section_html
from medsight.text.crosscheck.report_finding import ReportFinding, nodule_finding
from medsight.text.pipeline.annotations import AnalyzedNote, Entity, Section


def _report(text: str, mentions: list[tuple[str, str, dict]]) -> AnalyzedNote:
    """An analysed report: findings then impression sections, one sentence per line."""
    impression = text.index("IMPRESSION:")
    sentences, start = [], 0
    for line in text.split("\n"):
        sentences.append((start, start + len(line)))
        start += len(line) + 1
    entities = []
    for phrase, section, context in mentions:
        begin = text.index(phrase, impression if section == "impression" else 0)
        sentence = next(i for i, (s, e) in enumerate(sentences) if s <= begin < e)
        entities.append(
            Entity(
                begin,
                begin + len(phrase),
                "finding",
                phrase,
                "lung_nodule_or_mass",
                section=section,
                sentence=sentence,
                **context,
            )  # fmt: skip
        )
    sections = [
        Section("findings", 0, impression, 10),
        Section("impression", impression, len(text), impression + 12),
    ]
    return AnalyzedNote("rad_x", sections, sentences, entities)


def test_the_impression_decides_and_gives_size_and_character() -> None:
    text = ("FINDINGS:\nPossible nodule in the left lower lobe.\n"
            "IMPRESSION:\n18 mm spiculated nodule, left lower lobe.")  # fmt: skip
    analyzed = _report(
        text,
        [
            ("nodule", "findings", {"certainty": "uncertain"}),
            ("nodule", "impression", {"value_mm": 18.0}),
        ],  # fmt: skip
    )
    finding = nodule_finding(text, analyzed, "case_0001")
    assert (finding.nodule, finding.size_mm, finding.character) == (
        "present", 18.0, "spiculated")  # fmt: skip


def test_a_negated_nodule_is_absent_and_has_no_size() -> None:
    text = "FINDINGS:\nNo pulmonary nodule.\nIMPRESSION:\nNo calcified nodule."
    analyzed = _report(text, [("nodule", "impression", {"negation": "negated"})])
    finding = nodule_finding(text, analyzed, "c")
    assert (finding.nodule, finding.size_mm, finding.character) == ("absent", None, None)


def _finding(nodule: str, size: float | None = None, character: str | None = None):
    return ReportFinding("rad", "c", nodule, size, character)


def _image(predicted: str, probability: float = 0.9, label: str | None = None):
    return ImagePrediction("c", predicted, probability, label)


@pytest.mark.parametrize(
    ("finding", "image", "expected"),
    [
        (_finding("present", 20.0), _image("normal"), ("image missed the nodule", "high")),
        (
            _finding("present", 9.0, "smooth"),
            _image("normal"),
            ("image missed the nodule", "medium"),
        ),  # fmt: skip
        (_finding("absent"), _image("malignant"), ("nodule not in the report", "medium")),
        (_finding("not mentioned"), _image("benign"), ("nodule not in the report", "medium")),
        (
            _finding("present", 16.0),
            _image("benign"),
            ("suspicious nodule called benign", "high"),
        ),  # fmt: skip
        (
            _finding("present", 12.0, "spiculated"),
            _image("benign"),
            ("suspicious nodule called benign", "high"),
        ),  # fmt: skip
        (
            _finding("present", 12.0, "calcified"),
            _image("malignant"),
            ("benign-looking nodule called malignant", "medium"),
        ),  # fmt: skip
        (_finding("uncertain", 3.0), _image("benign"), ("equivocal report", "low")),
        # agreements
        (_finding("present", 12.0, "smooth"), _image("benign"), None),
        (_finding("present", 25.0, "spiculated"), _image("malignant"), None),
        (_finding("absent"), _image("normal"), None),
        (_finding("not mentioned"), _image("normal"), None),
        (_finding("uncertain", 3.0), _image("normal"), None),
    ],
)
def test_each_rule(finding, image, expected) -> None:
    verdict = classify_case(finding, image)
    assert (verdict[:2] if verdict else None) == expected


def test_list_is_ordered_by_priority_and_says_who_was_right() -> None:
    findings = [
        ReportFinding("r1", "case_1", "absent"),
        ReportFinding("r2", "case_2", "present", 22.0, "spiculated"),
        ReportFinding("r3", "case_3", "present", 11.0, "smooth"),
        ReportFinding("r4", "case_4", "uncertain", 3.0),
        ReportFinding("r5", "case_5", "present", 10.0, "calcified"),
    ]
    predictions = {
        "case_1": {"predicted": "benign", "probability": 0.6, "label": "normal"},
        "case_2": {"predicted": "normal", "probability": 0.7, "label": "malignant"},
        "case_3": {"predicted": "benign", "probability": 0.8, "label": "benign"},
        "case_4": {"predicted": "malignant", "probability": 0.5, "label": "normal"},
        "case_9": {"predicted": "normal", "probability": 0.9},
    }
    found, summary = find_discrepancies(findings, predictions)
    assert [d.case_id for d in found] == ["case_2", "case_1", "case_4"]
    assert [d.priority for d in found] == ["high", "medium", "low"]
    assert (found[0].image_right, found[0].report_right) == (False, True)
    assert (found[1].image_right, found[1].report_right) == (False, True)
    assert summary["cases_compared"] == 4
    assert summary["reports_without_prediction"] == summary["predictions_without_report"] == 1
    assert summary["nodule_agreement"] == pytest.approx(1 / 3)
    html = discrepancy_section_html(found, summary)
    assert html.count("<tr") == 4 and "case_2" in html and "image missed the nodule" in html
    assert "neither" not in html and "report</td>" in html


def test_a_bad_prediction_is_refused_by_case() -> None:
    with pytest.raises(InputError, match="prediction case_7: predicted"):
        find_discrepancies([], {"case_7": {"predicted": "tumour", "probability": 0.5}})
    with pytest.raises(InputError, match="probability"):
        find_discrepancies([], {"case_7": {"predicted": "normal", "probability": 1.5}})


def test_synthetic_reports_read_through_the_rule_pipeline(tmp_path) -> None:
    import json

    from medsight.text.pipeline.analyze import TextPipeline
    from medsight.text.synth.notes_corpus import write_notes_corpus

    write_notes_corpus(tmp_path / "c", 5, reports=60, discharge=0, feedback=0)
    lines = (tmp_path / "c" / "radiology.jsonl").read_text().splitlines()
    reports = [json.loads(line) for line in lines]
    pipeline = TextPipeline()
    findings = [
        nodule_finding(r["text"], pipeline.analyze_text(r["text"], r["note_id"]), r["case_id"])
        for r in reports
    ]
    pairs = [
        (f, r)
        for f, r in zip(findings, reports, strict=True)
        if r["nodule"]["present"] and f.nodule == "present"
    ]
    same = [
        f.nodule == r["findings"]["lung_nodule_or_mass"]
        for f, r in zip(findings, reports, strict=True)
    ]
    assert sum(same) >= 0.9 * len(reports)
    assert pairs and sum(f.size_mm == r["nodule"]["size_mm"] for f, r in pairs) >= 0.9 * len(pairs)
    assert sum(f.character == r["nodule"]["character"] for f, r in pairs) >= 0.9 * len(pairs)
