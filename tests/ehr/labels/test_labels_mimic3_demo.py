"""Labels on the real MIMIC-III demo (100 patients, 129 admissions), checked against ADMISSIONS.

Too small for any metric claim; it shows the templates read a real hospital's records as a
hand count of its admissions table does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from medsight.ehr.labels.label_spec import LabelSpec
from medsight.ehr.labels.templates import write_labels

DEMO = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "ehr" / "mimic3demo"

pytestmark = [
    pytest.mark.skipif(not DEMO.is_dir(), reason=f"no MIMIC-III demo at {DEMO}"),
    pytest.mark.skipif(
        any(
            importlib.util.find_spec(f"medsight.ehr.io.{name}") is None
            for name in ("importers", "mimic3")
        ),
        reason="the MIMIC-III importer (medsight.ehr.io.mimic3) is not here",
    ),
]


@pytest.fixture(scope="module")
def meds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medsight.ehr.io.importers import import_source

    out = tmp_path_factory.mktemp("mimic3") / "meds"
    import_source(DEMO, out, "mimic3")
    return out


@pytest.fixture(scope="module")
def admissions() -> pl.DataFrame:
    table = pl.read_csv(DEMO / "ADMISSIONS.csv.gz", infer_schema_length=0)
    return (
        table.select(
            pl.col("subject_id").cast(pl.Int64),
            pl.col("admittime").str.to_datetime(),
            pl.col("dischtime").str.to_datetime(),
            pl.col("deathtime").str.to_datetime(),
            pl.col("hospital_expire_flag") == "1",
        )
        .sort("subject_id", "admittime")
        .with_columns(pl.col("admittime").shift(-1).over("subject_id").alias("next_admit"))
    )


def test_30_day_readmission(meds: Path, admissions: pl.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "readmission.parquet"
    summary = write_labels(meds, LabelSpec(task="readmission", within_days=30), out)
    died_at_discharge = admissions.filter(
        pl.col("deathtime").is_not_null() & (pl.col("deathtime") <= pl.col("dischtime"))
    ).height
    readmitted = admissions.filter(
        pl.col("next_admit").is_not_null()
        & (pl.col("next_admit") > pl.col("dischtime"))
        & (pl.col("next_admit") <= pl.col("dischtime") + pl.duration(days=30))
    ).height
    assert summary["rows"] == admissions.height - died_at_discharge
    assert summary["excluded_by"].get("dead") == died_at_discharge
    assert summary["positives"] == readmitted
    assert pq.read_table(out).num_rows == summary["rows"]
    print(f"MIMIC-III demo, 30-day readmission: {summary}")


def test_in_hospital_death(meds: Path, admissions: pl.DataFrame, tmp_path: Path) -> None:
    spec = LabelSpec(task="in-hospital-death", at="each-admission")
    summary = write_labels(meds, spec, tmp_path / "mortality.parquet")
    died_in_hospital = admissions.filter(
        pl.col("hospital_expire_flag")
        & (pl.col("deathtime").is_null() | (pl.col("deathtime") <= pl.col("dischtime")))
    ).height
    assert summary["rows"] == admissions.height  # every admission has its discharge
    assert summary["positives"] == died_in_hospital
    print(f"MIMIC-III demo, in-hospital death: {summary}")


def test_in_hospital_death_from_the_first_48_hours(meds: Path, admissions: pl.DataFrame) -> None:
    from medsight.ehr.io.meds_dataset import open_meds
    from medsight.ehr.labels.templates import make_labels

    spec = LabelSpec(task="in-hospital-death", at="each-admission", hours_after=48)
    labels = make_labels(open_meds(meds), spec)
    at_48h = pl.col("admittime") + pl.duration(hours=48)
    still_in = admissions.filter(
        (pl.col("dischtime") > at_48h)
        & (pl.col("deathtime").is_null() | (pl.col("deathtime") > at_48h))
    )
    assert labels.num_rows == still_in.height
    print(
        f"MIMIC-III demo, in-hospital death at 48 h: {labels.num_rows} stays, "
        f"{sum(labels.column('boolean_value').to_pylist())} deaths"
    )
