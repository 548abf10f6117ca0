"""Unit normalisation: one unit per code, known conversions applied, the rest dropped."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from medsight.ehr.io.meds_dataset import MedsWriter
from medsight.ehr.io.units import canonical_unit, conversion


@pytest.mark.parametrize(
    ("code", "source", "target", "value", "expected"),
    [
        ("LOINC//2345-7", "mmol/L", "mg/dL", 5.5, 99.09),  # glucose
        ("LOINC//2160-0", "umol/L", "mg/dL", 88.42, 1.0),  # creatinine
        ("LOINC//4548-4", "mmol/mol", "%", 53.0, 7.0),  # HbA1c, IFCC -> NGSP
        ("LOINC//4548-4", "%", "mmol/mol", 7.0, 53.0),
        ("LOINC//2093-3", "mmol/L", "mg/dL", 5.0, 193.35),  # cholesterol
        ("EICU_LAB//glucose", "mg/dL", "mmol/L", 180.16, 10.0),  # by name
        ("LOINC//8310-5", "degF", "Cel", 98.6, 37.0),  # temperature, any code
        ("LOINC//29463-7", "lb", "kg", 154.0, 69.85),  # weight, any code
    ],
)
def test_known_conversions(code, source, target, value, expected):
    scale = conversion(code, source, target)
    assert scale is not None
    assert value * scale.factor + scale.offset == pytest.approx(expected, abs=0.1)


def test_spelling_is_not_a_unit_change():
    assert canonical_unit("mg/dl") == canonical_unit("MG/DL") == "mg/dL"
    assert canonical_unit("µmol/L") == "umol/L"
    assert canonical_unit("[lb_av]") == "lb"
    assert conversion("LOINC//718-7", "g/dL", "mmol/L") is None  # haemoglobin: not known


def test_writer_converts_to_the_majority_unit_and_drops_the_rest(tmp_path, read_events, caplog):
    rows = [
        (1, "LOINC//2345-7", 100.0, "mg/dL"),
        (1, "LOINC//2345-7", 110.0, "mg/dl"),
        (1, "LOINC//2345-7", 5.5, "mmol/L"),
        (2, "LOINC//29463-7", 154.0, "lb"),
        (2, "LOINC//29463-7", 70.0, "kg"),
        (2, "LOINC//29463-7", 71.0, "kg"),
        (2, "LOINC//X-1", 1.0, "mystery"),
        (2, "LOINC//X-1", 2.0, "widgets"),
        (2, "LOINC//X-1", 3.0, "widgets"),
    ]
    out = tmp_path / "meds"
    with caplog.at_level(logging.WARNING), MedsWriter(out, dataset_name="t") as writer:
        writer.add(
            {
                "subject_id": [r[0] for r in rows],
                "time": [None] * len(rows),
                "code": [r[1] for r in rows],
                "numeric_value": [r[2] for r in rows],
                "unit": [r[3] for r in rows],
            }
        )
    events = read_events(out)
    glucose = sorted(events.filter(pl.col("code") == "LOINC//2345-7")["numeric_value"])
    assert glucose == pytest.approx([99.09, 100.0, 110.0], abs=0.01)
    weight = sorted(events.filter(pl.col("code") == "LOINC//29463-7")["numeric_value"])
    assert weight == pytest.approx([69.85, 70.0, 71.0], abs=0.01)
    assert sorted(events.filter(pl.col("code") == "LOINC//X-1")["numeric_value"]) == [2.0, 3.0]
    codes = pl.read_parquet(out / "metadata" / "codes.parquet")
    units = dict(zip(codes["code"], codes["unit"], strict=True))
    assert units == {"LOINC//2345-7": "mg/dL", "LOINC//29463-7": "kg", "LOINC//X-1": "widgets"}
    assert dict(zip(codes["code"], codes["count"], strict=True))["LOINC//X-1"] == 2
    warnings = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1 and "1 rows" in warnings[0] and "mystery" not in warnings[0]
