"""Each importer with a real extract (MIMIC-III demo, eICU demo subset, OMOP sample) on it.

The extracts are far too small for any metric; these tests show the importers read the
layouts hospitals export and write MEDS that validates, with facts checked against the
source tables.
"""

from __future__ import annotations

import csv
import gzip

import polars as pl

from medsight.ehr.io.importers import import_source


def test_mimic3_demo(real_extract, read_events, checked, tmp_path):
    source = real_extract("mimic3demo")
    out = tmp_path / "meds"
    summary = import_source(source, out, "mimic3")
    assert summary == checked(out)
    events = read_events(out)
    assert summary["subjects"] == 100
    codes = events["code"]
    assert (codes == "ENCOUNTER//inpatient").sum() == 129
    assert (codes == "DISCHARGE//inpatient").sum() == 129
    assert (codes == "MEDS_BIRTH").sum() == 100
    assert events.filter(pl.col("code") == "MEDS_DEATH")["subject_id"].n_unique() > 0
    with gzip.open(source / "DIAGNOSES_ICD.csv.gz", "rt") as handle:
        diagnoses = sum(1 for _ in handle) - 1
    assert codes.str.starts_with("ICD9CM//").sum() == diagnoses
    # ICD-9 decimal points: 4280 -> 428.0, E codes keep four characters
    assert "ICD9CM//428.0" in set(codes)
    assert not codes.filter(codes.str.starts_with("ICD9CM//")).str.contains(r"^ICD9CM//\d{4}").any()
    # diagnoses sit at their admission's discharge, never before its start
    first = (
        events.filter(pl.col("code").str.starts_with("ICD9CM//"))
        .group_by("subject_id")
        .agg(pl.col("time").min().alias("dx"))
    )
    admit = (
        events.filter(pl.col("code") == "ENCOUNTER//inpatient")
        .group_by("subject_id")
        .agg(pl.col("time").min().alias("admit"))
    )
    assert (
        first.join(admit, on="subject_id")["dx"] > first.join(admit, on="subject_id")["admit"]
    ).all()
    assert codes.str.starts_with("NDC//").sum() > 0
    assert set(events.filter(pl.col("time").is_null())["code"]) <= {"SEX//F", "SEX//M"}


def test_eicu_demo(real_extract, read_events, checked, tmp_path):
    source = real_extract("eicudemo")
    out = tmp_path / "meds"
    summary = import_source(source, out, "eicu")
    assert summary == checked(out)
    events = read_events(out)
    with (source / "patient.csv").open(newline="") as handle:
        stays = list(csv.DictReader(handle))
    assert summary["subjects"] == len({s["uniquepid"] for s in stays}) == 100
    assert sorted(events["subject_id"].unique()) == list(range(1, 101))
    codes = events["code"]
    assert codes.str.starts_with("EICU_LAB//").sum() > 25_000
    assert codes.str.starts_with("ICD10CM//").sum() > 0  # "ICD-9, ICD-10" pairs prefer ICD-10
    assert (codes == "ENCOUNTER//icu").sum() == len(stays)
    assert (codes == "MEDS_BIRTH").sum() == 100  # one birth per patient, even over stays
    assert (
        events.filter(pl.col("code") == "EICU_LAB//BUN")["numeric_value"].is_not_null().mean()
        > 0.95
    )
    units = pl.read_parquet(out / "metadata" / "codes.parquet")
    assert units.filter(pl.col("code") == "EICU_LAB//BUN")["unit"].to_list() == ["mg/dL"]


def test_omop_sample(real_extract, read_events, checked, tmp_path):
    source = real_extract("omop")
    out = tmp_path / "meds"
    summary = import_source(source, out, "omop")
    assert summary == checked(out)
    events = read_events(out)
    assert summary["subjects"] == 12
    codes = events["code"]
    vocabularies = set(codes.str.split("//").list.first())
    assert {"ICD9CM", "NDC", "OMOP_CONCEPT", "ENCOUNTER", "MEDS_BIRTH"} <= vocabularies
    # gender_concept_id 8507 for ten persons, blank for two
    assert (codes == "SEX//M").sum() == 10
    assert (codes == "SEX//UNK").sum() == 2
    # person ids are OMOP's own (here negative and positive 64-bit integers)
    person = pl.read_csv(source / "person.csv", infer_schema_length=0)
    assert set(events["subject_id"].unique()) == {int(p) for p in person["person_id"]}
    assert (
        events.filter(pl.col("code").str.starts_with("OMOP_CONCEPT//"))["numeric_value"]
        .is_not_null()
        .any()
    )
