"""MIMIC-IV on a tiny hand-made export in its exact column names, and --from meds."""

from __future__ import annotations

import gzip

import polars as pl
import pytest

from medsight.ehr.io.importers import import_source
from medsight.errors import InputError

HOSP = {
    "patients.csv.gz": "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod\n"
    "10000032,F,52,2180,2014 - 2016,2180-09-09\n"
    "10000084,M,72,2160,2017 - 2019,\n",
    "admissions.csv.gz": "subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,"
    "admit_provider_id,admission_location,discharge_location,insurance,language,marital_status,"
    "race,edregtime,edouttime,hospital_expire_flag\n"
    "10000032,22595853,2180-05-06 22:23:00,2180-05-07 17:15:00,,URGENT,P874LG,"
    "TRANSFER FROM HOSPITAL,HOME,Other,ENGLISH,WIDOWED,WHITE,2180-05-06 19:17:00,"
    "2180-05-06 23:30:00,0\n"
    "10000084,23052089,2160-11-21 01:56:00,2160-11-25 14:52:00,,EW EMER.,P21Y0B,"
    "EMERGENCY ROOM,HOME HEALTH CARE,Medicare,ENGLISH,MARRIED,WHITE,,,0\n",
    "diagnoses_icd.csv.gz": "subject_id,hadm_id,seq_num,icd_code,icd_version\n"
    "10000032,22595853,1,5723,9\n"
    "10000084,23052089,1,G3183,10\n",
    "procedures_icd.csv.gz": "subject_id,hadm_id,seq_num,chartdate,icd_code,icd_version\n"
    "10000032,22595853,1,2180-05-07,5491,9\n"
    "10000084,23052089,1,2160-11-22,0DH67UZ,10\n",
    "prescriptions.csv.gz": "subject_id,hadm_id,pharmacy_id,poe_id,poe_seq,order_provider_id,"
    "starttime,stoptime,drug_type,drug,formulary_drug_cd,gsn,ndc,prod_strength,form_rx,"
    "dose_val_rx,dose_unit_rx,form_val_disp,form_unit_disp,doses_per_24_hrs,route\n"
    "10000032,22595853,1,p1,1,P1,2180-05-07 00:00:00,2180-05-07 22:00:00,MAIN,Furosemide,"
    "FURO40I,008209,63323028010,40mg/4mL Vial,,40,mg,1,VIAL,1,IV\n"
    "10000032,22595853,2,p2,2,P1,2180-05-07 01:00:00,,MAIN,Sodium Chloride 0.9%,,,0,,,"
    ",,,,,IV\n",
    "labevents.csv.gz": "labevent_id,subject_id,hadm_id,specimen_id,itemid,order_provider_id,"
    "charttime,storetime,value,valuenum,valueuom,ref_range_lower,ref_range_upper,flag,"
    "priority,comments\n"
    "1,10000032,22595853,1,50931,,2180-05-06 23:00:00,,5.6,5.6,mmol/L,,,,STAT,\n"
    "2,10000032,22595853,2,50931,,2180-05-07 06:00:00,,110,110,mg/dL,,,,STAT,\n"
    "3,10000032,22595853,3,50931,,2180-05-07 07:00:00,,120,120,mg/dL,,,,STAT,\n",
    "d_labitems.csv.gz": "itemid,label,fluid,category\n50931,Glucose,Blood,Chemistry\n",
    "omr.csv.gz": "subject_id,chartdate,seq_num,result_name,result_value\n"
    "10000032,2180-04-27,1,Blood Pressure,110/65\n"
    "10000032,2180-04-27,1,Weight (Lbs),94\n",
}


@pytest.fixture
def mimic4(tmp_path):
    hosp = tmp_path / "mimic-iv" / "hosp"
    hosp.mkdir(parents=True)
    for name, text in HOSP.items():
        with gzip.open(hosp / name, "wt") as handle:
            handle.write(text)
    return tmp_path / "mimic-iv"


def test_mimic4_hand_made_export(mimic4, tmp_path, read_events, checked):
    out = tmp_path / "meds"
    summary = import_source(mimic4, out, "mimic4")
    assert summary == checked(out)
    events = read_events(out)
    codes = set(events["code"])
    assert {
        "ICD9CM//572.3",
        "ICD10CM//G31.83",
        "ICD9PROC//54.91",
        "ICD10PCS//0DH67UZ",
        "NDC//63323028010",
        "MIMIC4_DRUG//Sodium Chloride 0.9%",
        "ENCOUNTER//inpatient",
        "DISCHARGE//inpatient",
        "MEDS_DEATH",
        "MIMIC4_ITEM//50931",
        "MIMIC4_OMR//Blood Pressure Systolic",
        "MIMIC4_OMR//Blood Pressure Diastolic",
        "MIMIC4_OMR//Weight (Lbs)",
    } <= codes
    birth = events.filter(pl.col("code") == "MEDS_BIRTH").sort("subject_id")["time"].dt.year()
    assert birth.to_list() == [2128, 2088]  # anchor_year - anchor_age
    glucose = events.filter(pl.col("code") == "MIMIC4_ITEM//50931")["numeric_value"].sort()
    assert glucose.to_list() == pytest.approx([100.89, 110.0, 120.0], abs=0.01)  # mmol/L -> mg/dL
    meta = pl.read_parquet(out / "metadata" / "codes.parquet").filter(
        pl.col("code") == "MIMIC4_ITEM//50931"
    )
    assert meta["description"].to_list() == ["Glucose"] and meta["unit"].to_list() == ["mg/dL"]


def test_meds_copy_validates_and_copies(mimic4, tmp_path, checked):
    first = tmp_path / "first"
    counts = import_source(mimic4, first, "mimic4")
    copied = import_source(first, tmp_path / "copy", "meds")
    assert copied == counts == checked(tmp_path / "copy")
    (first / "metadata" / "codes.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError):
        import_source(first, tmp_path / "copy2", "meds")
    assert not (tmp_path / "copy2").exists()


def test_missing_source_and_table(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        import_source(tmp_path / "absent", tmp_path / "out", "mimic3")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no ADMISSIONS.csv"):
        import_source(tmp_path / "empty", tmp_path / "out", "mimic3")
