"""The gold annotations match the text they annotate, span by span."""

import csv
import datetime as dt
import json
import re
from pathlib import Path

from medsight.text.pipeline.annotations import CERTAINTY, EXPERIENCER, NEGATION, TEMPORALITY
from medsight.text.synth.chest_ct_reports import LOBES, REPORT_FINDINGS


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


PHI_TYPES = {"NAME", "DATE", "AGE", "ID", "PHONE", "FAX", "EMAIL", "URL", "ADDRESS", "LOCATION",
             "HOSPITAL"}  # fmt: skip
PHI_SHAPES = {
    "AGE": r"\d{1,3}",
    "ID": r"[A-Z-]*[0-9][0-9-]+",
    "PHONE": r"(\(\d{3}\) |\d{3}[-.])555[-.]01\d\d",
    "FAX": r"(\(\d{3}\) |\d{3}[-.])555[-.]01\d\d",
    "EMAIL": r"[a-z0-9.]+@[a-z.]*example\.(com|org|net)",
    "URL": r"(https?://|www\.)\S+",
    "NAME": r"[A-Z][a-z]*\.?( [A-Z][a-z]+)?",
    "LOCATION": r"[A-Z][a-z]+( [A-Z][a-z]+)?",
    "HOSPITAL": r"[A-Z][A-Za-z.' ]+(Hospital|Center|Clinic)",
    "ADDRESS": r"\d+( [A-Z][a-z]+)*( [A-Z][a-z]+)?(, Apt \d+[A-D])?",
}
DATE_FORMATS = ("%m/%d/%Y", "%B %d, %Y", "%Y-%m-%d", "%d %b %Y", "%m/%d/%y", "%d.%m.%Y")


def _is_date(text: str) -> bool:
    for pattern in DATE_FORMATS:
        try:
            dt.datetime.strptime(text, pattern)
            return True
        except ValueError:
            pass
    return False


def _check_entities(record: dict) -> None:
    text = record["text"]
    for e in record["entities"]:
        piece = text[e["start"] : e["end"]]
        assert piece and piece == piece.strip(), (record["note_id"], e)
        assert e["negation"] in NEGATION and e["certainty"] in CERTAINTY
        assert e["temporality"] in TEMPORALITY and e["experiencer"] in EXPERIENCER
        if e["type"] == "measurement":
            number = float(re.match(r"[\d.]+", piece).group(0))
            assert e["value_mm"] == (number * 10 if piece.endswith("cm") else number), piece
        if e["type"] == "anatomy" and e["concept"] in LOBES:
            assert piece in (e["concept"], "lingula") or piece.isupper(), piece


def test_every_report_entity_is_exactly_where_the_gold_says(corpus: Path) -> None:
    reports = read_jsonl(corpus / "radiology.jsonl")
    assert len(reports) == 120
    for r in reports:
        _check_entities(r)
        assert set(r["findings"]) == set(REPORT_FINDINGS)
        nodule = r["nodule"]
        mentions = [
            e
            for e in r["entities"]
            if e["concept"] == "lung_nodule_or_mass" and e["temporality"] == "recent"
        ]
        if nodule["present"]:
            assert r["findings"]["lung_nodule_or_mass"] == "present"
            sized = [e["value_mm"] for e in mentions if e["value_mm"] is not None]
            assert sized and set(sized) == {nodule["size_mm"]}
            lobes = {e["concept"] for e in r["entities"] if e["type"] == "anatomy"}
            assert nodule["lobe"] in lobes
            assert nodule["character"] in r["text"] or nodule["character"] == "part-solid"
        else:
            assert r["findings"]["lung_nodule_or_mass"] != "present"
            assert nodule["size_mm"] is None


def test_reports_vary_and_carry_negated_uncertain_historical_and_family_mentions(
    corpus: Path,
) -> None:
    reports = read_jsonl(corpus / "radiology.jsonl")
    first_lines = {r["text"].splitlines()[0] for r in reports}
    assert len(first_lines) >= 8  # titles, headers or none
    contexts = {
        (e["negation"], e["certainty"], e["temporality"], e["experiencer"])
        for r in reports
        for e in r["entities"]
    }
    assert ("negated", "certain", "recent", "patient") in contexts
    assert ("affirmed", "uncertain", "recent", "patient") in contexts
    assert ("affirmed", "certain", "historical", "patient") in contexts
    assert ("affirmed", "certain", "hypothetical", "patient") in contexts
    assert ("affirmed", "certain", "recent", "other") in contexts
    labels = {v for r in reports for v in r["findings"].values()}
    assert labels == {"present", "absent", "uncertain", "not mentioned"}
    texts = " ".join(r["text"] for r in reports)
    assert re.search(r"\d+\.\d cm", texts) and re.search(r"\d+ x \d+ mm", texts)
    assert "No pleural effusion or pneumothorax" in texts


def test_every_discharge_summary_holds_every_phi_type_at_its_span(corpus: Path) -> None:
    summaries = read_jsonl(corpus / "discharge.jsonl")
    assert len(summaries) == 60
    old = 0
    for s in summaries:
        _check_entities(s)
        text = s["text"]
        age = int(re.search(r"Age: (\d+)", text).group(1))
        old += age > 89
        # HIPAA Safe Harbor: an age is PHI only over 89
        wanted = PHI_TYPES if age > 89 else PHI_TYPES - {"AGE"}
        assert {p["type"] for p in s["phi"]} == wanted, s["note_id"]
        for p in s["phi"]:
            piece = text[p["start"] : p["end"]]
            if p["type"] == "DATE":
                assert _is_date(piece), piece
            else:
                assert re.fullmatch(PHI_SHAPES[p["type"]], piece), (p["type"], piece)
            if p["type"] == "AGE":
                assert int(piece) == age
        spans = sorted((p["start"], p["end"]) for p in s["phi"])
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert 0 < old < len(summaries)


def test_assertion_rows_name_a_mention_that_occurs_once_in_its_sentence(corpus: Path) -> None:
    with open(corpus / "assert.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) > 200
    for row in rows:
        assert row["text"].count(row["concept"]) == 1
    assert {r["negation"] for r in rows} == set(NEGATION)
    assert {r["temporality"] for r in rows} == set(TEMPORALITY)
    assert {r["experiencer"] for r in rows} == set(EXPERIENCER)


def test_feedback_sentiments_are_balanced_with_hard_cases(corpus: Path) -> None:
    comments = read_jsonl(corpus / "feedback.jsonl")
    counts = {
        s: sum(c["sentiment"] == s for c in comments) for s in ("positive", "neutral", "negative")
    }
    assert counts == {"positive": 30, "neutral": 30, "negative": 30}
    assert len({c["topic"] for c in comments}) >= 6
    positive = [c["text"] for c in comments if c["sentiment"] == "positive"]
    assert any(" not " in t or "Nobody" in t for t in positive)
    assert any(", but " in c["text"] for c in comments)
    with open(corpus / "notes.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 120 + 60 + 90
    assert [r["text"] for r in table if r["kind"] == "feedback"] == [c["text"] for c in comments]
