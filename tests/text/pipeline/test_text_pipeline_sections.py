"""Section headers on real radlabels reports and on note-style headers."""

from __future__ import annotations

from pathlib import Path

from medsight.text.pipeline.sections import find_sections, section_name


def test_a_mimic_style_report_has_its_four_sections_in_order(radlabels_reports: Path) -> None:
    text = (radlabels_reports / "synth_0002.txt").read_text(encoding="utf-8")
    sections = find_sections(text)
    assert [s.name for s in sections] == ["history", "comparison", "findings", "impression"]
    # INDICATION opens history; an exam description header opens the findings
    assert text[sections[0].start : sections[0].body_start] == "INDICATION:"
    assert text[sections[2].start : sections[2].body_start] == "PA AND LATERAL CHEST RADIOGRAPH:"
    assert "Rule out pneumonia." in text[sections[0].body_start : sections[0].end]
    assert text[sections[3].body_start : sections[3].end].strip().startswith("1. Known thyroid")


def test_nearly_every_real_report_has_findings_or_impression(radlabels_reports: Path) -> None:
    files = sorted(radlabels_reports.glob("*.txt"))
    found = [{s.name for s in find_sections(p.read_text(encoding="utf-8"))} for p in files]
    share = sum(bool(names & {"findings", "impression"}) for names in found) / len(found)
    assert len(found) == 1000
    assert share > 0.95  # headed, or unheaded findings after the indication
    assert sum("history" in names for names in found) > 800


def test_text_before_the_first_header_is_in_no_section() -> None:
    text = "FINAL REPORT\nCHEST ON ___\n\nFINDINGS: No effusion."
    (section,) = find_sections(text)
    assert section.name == "findings" and section.start == text.index("FINDINGS")


def test_discharge_style_and_inline_headers() -> None:
    text = (
        "HPI:\nCough.\n\nPast medical history:\n1. Hypertension\n\nFamily history: Mother had "
        "stroke.\n\nHospital course:\nTreated.\n\nDischarge instructions:\nReturn if fever. "
        "FOLLOW UP: clinic."
    )
    names = [s.name for s in find_sections(text)]
    assert names == [
        "history",
        "past_medical_history",
        "family_history",
        "hospital_course",
        "discharge_instructions",
        "follow_up",
    ]


def test_subheadings_and_unknown_title_case_phrases_do_not_open_sections() -> None:
    text = "FINDINGS:\nLungs: No nodule.\nHeart and mediastinum: Normal.\nContact name: ___\n"
    assert [s.name for s in find_sections(text)] == ["findings"]
    assert section_name("Lungs") == ""
    assert section_name("Contact name") is None
    assert section_name("NOTIFICATION") == "other"
    assert section_name("WET READ") == "findings"
    assert section_name("CONCLUSION") == "impression"
    assert section_name("REASON FOR EXAMINATION") == "history"
