"""The built-in label templates: MEDS labels (subject, prediction time, outcome) from a MEDS folder.

`make_labels` reads one shard at a time (every subject's rows live in one shard), so memory
is bounded by a shard, not the cohort; `write_labels` streams the labels into a parquet or CSV
file (the MEDS label schema: ``subject_id`` int64, ``prediction_time`` timestamp[us],
``boolean_value`` bool) that appears only when whole.

Times are naive UTC microseconds, as in the MEDS folder. "Recorded events" are a subject's
timed events other than ``MEDS_BIRTH`` (birth is a fact about the subject, not a record; a
death is a record). The outcome window is ``(t, t + within_days]`` for a prediction time
``t``: an outcome exactly at ``t`` is not in it (whatever happened at ``t`` is known at
``t``, and the model may see it), an outcome exactly at ``t + within_days`` is.

Each prediction time gets a label or is excluded for the first of these reasons (the counts
are ``excluded_by``):

1. ``outcome_at_or_before`` (first-code): the subject's first outcome code is at or before
   ``t``; there is nothing left to predict.
2. ``dead``: the subject died at or before ``t`` (for death tasks this is the outcome before
   ``t``; for readmission it drops the discharge of an in-hospital death).
3. ``visit_ended`` (in-hospital-death): the admission was over (discharged) at or before
   ``t``, as when predicting 48 hours into a 1-day stay.
4. ``outside_records``: ``t`` is before the subject's first recorded event or after the
   last (a fixed date or age the records do not cover).
5. ``short_history``: ``t`` minus the first recorded event is under ``min_history_days``.
6. ``few_events``: fewer than ``min_events`` recorded events at or before ``t``.
7. ``censored`` (when ``spec.censor``): no outcome in the window, the subject did not die
   after ``t``, and the records end before the window does: the label is unknown.
   (``in-hospital-death`` windows end at the admission's discharge, which is recorded, so
   only an admission with no recorded discharge is censored.)
8. ``no_birth`` (``at = age:...``): no ``MEDS_BIRTH`` time, so no prediction time at all.

No future leak: the label looks only forward, at outcome events in the window; every
exclusion uses data at or before ``t`` (first event, event count, death or first outcome at or
before ``t``) except the last-event time in rules 4 and 7. That one decides whether a label
*exists* (is the subject still observed when the window closes?), never what a model sees or
what the label is: dropping a row whose outcome is unknowable is what an analyst does by hand,
and planting non-outcome events before the last one changes no label (the tests show it).
A death after ``t`` with no outcome makes a known negative (the subject can no longer be
readmitted or get the code), which is why it stops censoring.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from medsight.ehr.io.meds_dataset import BIRTH, DEATH, MedsDataset, open_meds
from medsight.ehr.labels.label_spec import LabelSpec
from medsight.errors import InputError
from medsight.runs.atomic import atomic_path

#: the columns medsight writes, typed as in the MEDS label schema
LABEL_COLUMNS = pa.schema(
    [
        ("subject_id", pa.int64()),
        ("prediction_time", pa.timestamp("us")),
        ("boolean_value", pa.bool_()),
    ]
)
#: parquet schema-metadata keys holding the spec (JSON) and its sentence
SPEC_KEY = b"medsight.label_spec"
DEFINITION_KEY = b"medsight.label_definition"
INPATIENT = "ENCOUNTER//inpatient"
ENCOUNTER_PREFIX = "ENCOUNTER//"
DISCHARGE_PREFIX = "DISCHARGE//"
REASONS = (
    "outcome_at_or_before",
    "dead",
    "visit_ended",
    "outside_records",
    "short_history",
    "few_events",
    "censored",
    "no_birth",
)
_SID = "subject_id"


def make_labels(dataset: MedsDataset, spec: LabelSpec) -> pa.Table:
    """All labels of ``dataset`` for ``spec``, sorted by subject and prediction time.

    Raises:
        InputError: a shard is unreadable or breaks the MEDS schema.
    """
    tables = [labels for labels, _ in iter_labels(dataset, spec)]
    if not tables:
        return LABEL_COLUMNS.empty_table()
    return pa.concat_tables(tables).sort_by([(_SID, "ascending"), ("prediction_time", "ascending")])


def iter_labels(dataset: MedsDataset, spec: LabelSpec) -> Iterator[tuple[pa.Table, Counter[str]]]:
    """Labels and exclusion counts, one shard at a time."""
    for path in dataset.shard_paths():
        events = dataset.read_shard(path, columns=[_SID, "time", "code"])
        yield label_events(events, spec)


def write_labels(data: Path, spec: LabelSpec, out: Path) -> dict[str, Any]:
    """Write the labels of the MEDS folder ``data`` to ``out`` (``.parquet`` or ``.csv``).

    Written shard by shard (sorted by subject and time within each shard), so memory holds
    one shard's events and labels at a time.

    The parquet file carries the spec and its `LabelSpec.describe` sentence in its schema
    metadata (see `label_definition`).

    Returns:
        ``rows``, ``subjects``, ``positives``, ``excluded`` (prediction times dropped) and
        ``excluded_by`` (reason -> count, see the module docstring).

    Raises:
        InputError: ``data`` is not a MEDS folder, or ``out`` is neither .parquet nor .csv.
    """
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(f"{out}: labels are written as .parquet or .csv")
    dataset = open_meds(data)
    schema = LABEL_COLUMNS.with_metadata(
        {SPEC_KEY: spec.model_dump_json().encode(), DEFINITION_KEY: spec.describe().encode()}
    )
    rows = subjects = positives = 0
    excluded: Counter[str] = Counter()
    with atomic_path(out) as tmp:
        writer: pq.ParquetWriter | pacsv.CSVWriter
        if suffix == ".parquet":
            writer = pq.ParquetWriter(tmp, schema)
        else:
            writer = pacsv.CSVWriter(tmp, LABEL_COLUMNS)
        with writer:
            for labels, dropped in iter_labels(dataset, spec):
                writer.write_table(labels)
                rows += labels.num_rows
                subjects += len(set(labels.column(_SID).to_pylist()))
                positives += sum(labels.column("boolean_value").to_pylist())
                excluded.update(dropped)
    return {
        "rows": rows,
        "subjects": subjects,
        "positives": positives,
        "excluded": sum(excluded.values()),
        "excluded_by": {reason: excluded[reason] for reason in REASONS if excluded[reason]},
    }


def label_definition(path: Path) -> str | None:
    """The label definition sentence stored in a labels parquet written here (else None)."""
    if path.suffix.lower() != ".parquet":
        return None
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None
    value = metadata.get(DEFINITION_KEY)
    return value.decode() if value else None


# -- one shard -----------------------------------------------------------------------------
def label_events(events: pa.Table, spec: LabelSpec) -> tuple[pa.Table, Counter[str]]:
    """Labels of the subjects in one table of MEDS events (all rows of each subject).

    Returns:
        The labels (`LABEL_COLUMNS`, sorted) and the count of excluded prediction times per
        reason.
    """
    frame = pl.from_arrow(events.select([_SID, "time", "code"]))
    assert isinstance(frame, pl.DataFrame)
    timed = frame.filter(pl.col("time").is_not_null()).with_columns(
        pl.col("time").cast(pl.Datetime("us"))
    )
    recorded = timed.filter(pl.col("code") != BIRTH)
    span = recorded.group_by(_SID).agg(
        pl.col("time").min().alias("first"), pl.col("time").max().alias("last")
    )
    births = _first_time(timed.filter(pl.col("code") == BIRTH), "birth")
    deaths = _first_time(timed.filter(pl.col("code") == DEATH), "death")
    excluded: Counter[str] = Counter()

    times = _prediction_times(timed, span, births, spec, excluded)
    if spec.task == "in-hospital-death":
        times = _with_visit_end(times, timed)
    else:
        times = times.with_columns(pl.lit(None, dtype=pl.Datetime("us")).alias("visit_end"))
    times = times.with_columns(
        (pl.col("anchor_time") + pl.duration(microseconds=round(spec.hours_after * 3600e6))).alias(
            "prediction_time"
        )
    )
    outcomes = _outcome_events(timed, spec)
    times = (
        times.sort("prediction_time")
        .join_asof(
            outcomes.sort("outcome_time"),
            left_on="prediction_time",
            right_on="outcome_time",
            by=_SID,
            check_sortedness=False,  # sorted just above
            strategy="forward",
            allow_exact_matches=False,  # the window is open at t
        )
        .rename({"outcome_time": "next_outcome"})
        .join(
            _first_time(outcomes.rename({"outcome_time": "time"}), "first_outcome"),
            on=_SID,
            how="left",
        )
        .join(span, on=_SID, how="left")
        .join(deaths, on=_SID, how="left")
    )
    times = _with_events_so_far(times, recorded)
    window_end = pl.col("prediction_time") + pl.duration(days=spec.within_days)
    if spec.task == "in-hospital-death":
        window_end = pl.min_horizontal(window_end, pl.col("visit_end"))
    t = pl.col("prediction_time")
    positive = pl.col("next_outcome").is_not_null() & (pl.col("next_outcome") <= window_end)
    reason = (
        pl.when(pl.lit(spec.task == "first-code") & (pl.col("first_outcome") <= t))
        .then(pl.lit("outcome_at_or_before"))
        .when(pl.col("death") <= t)
        .then(pl.lit("dead"))
        .when(pl.col("visit_end") <= t)
        .then(pl.lit("visit_ended"))
        .when(pl.col("first").is_null() | (t < pl.col("first")) | (t > pl.col("last")))
        .then(pl.lit("outside_records"))
        .when(t - pl.col("first") < pl.duration(days=spec.min_history_days))
        .then(pl.lit("short_history"))
        .when(pl.col("events_so_far") < spec.min_events)
        .then(pl.lit("few_events"))
        .when(
            pl.lit(spec.censor)
            & ~positive
            & pl.col("death").is_null()
            & (pl.col("last") < window_end)
        )
        .then(pl.lit("censored"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    times = times.with_columns(reason.alias("reason"), positive.alias("boolean_value"))
    excluded.update(
        {
            str(row["reason"]): int(row["len"])
            for row in times.filter(pl.col("reason").is_not_null())
            .group_by("reason")
            .len()
            .iter_rows(named=True)
        }
    )
    kept = (
        times.filter(pl.col("reason").is_null())
        .select(_SID, "prediction_time", "boolean_value")
        .sort(_SID, "prediction_time")
    )
    return kept.to_arrow().cast(LABEL_COLUMNS), excluded


def _first_time(events: pl.DataFrame, name: str) -> pl.DataFrame:
    return events.group_by(_SID).agg(pl.col("time").min().alias(name))


def _prediction_times(
    timed: pl.DataFrame,
    span: pl.DataFrame,
    births: pl.DataFrame,
    spec: LabelSpec,
    excluded: Counter[str],
) -> pl.DataFrame:
    """subject_id, anchor_time: one row per distinct anchor (prediction time before
    ``hours_after``) of a subject."""
    code = pl.col("code")
    if spec.anchor == "each-discharge":
        chosen = timed.filter(code.str.starts_with(DISCHARGE_PREFIX))
    elif spec.anchor == "each-visit":
        chosen = timed.filter(code.str.starts_with(ENCOUNTER_PREFIX))
    elif spec.anchor == "each-admission":
        chosen = timed.filter(code == INPATIENT)
    elif spec.anchor == "date":
        date = spec.anchor_date
        assert date is not None
        chosen = span.select(_SID, pl.lit(date, dtype=pl.Datetime("us")).alias("time"))
    else:
        years = spec.anchor_age_years
        assert years is not None
        whole = int(years)
        extra_us = round((years - whole) * 365.25 * 86_400e6)
        excluded["no_birth"] += span.join(births, on=_SID, how="anti").height
        chosen = births.select(
            _SID,
            (pl.col("birth").dt.offset_by(f"{whole}y") + pl.duration(microseconds=extra_us)).alias(
                "time"
            ),
        )
    return chosen.select(_SID, pl.col("time").alias("anchor_time")).unique()


def _outcome_events(timed: pl.DataFrame, spec: LabelSpec) -> pl.DataFrame:
    """subject_id, outcome_time: every event that is the task's outcome."""
    code = pl.col("code")
    if spec.task in ("death", "in-hospital-death"):
        chosen = timed.filter(code == DEATH)
    elif spec.task == "readmission":
        chosen = timed.filter(code == INPATIENT)
    else:
        chosen = timed.filter(pl.any_horizontal([code.str.starts_with(p) for p in spec.codes]))
    return chosen.select(_SID, pl.col("time").alias("outcome_time")).unique()


def _with_visit_end(times: pl.DataFrame, timed: pl.DataFrame) -> pl.DataFrame:
    """Add ``visit_end``: the admission's discharge, the first DISCHARGE//* at or after the
    admission (the anchor) and before the next admission (null when there is none: the
    admission's end is unknown)."""
    discharges = timed.filter(pl.col("code").str.starts_with(DISCHARGE_PREFIX)).select(
        _SID, pl.col("time").alias("visit_end")
    )
    admissions = timed.filter(pl.col("code") == INPATIENT).select(
        _SID, pl.col("time").alias("next_admission")
    )
    times = times.sort("anchor_time")
    times = times.join_asof(
        discharges.unique().sort("visit_end"),
        left_on="anchor_time",
        right_on="visit_end",
        by=_SID,
        check_sortedness=False,  # sorted just above
        strategy="forward",
    ).join_asof(
        admissions.unique().sort("next_admission"),
        left_on="anchor_time",
        right_on="next_admission",
        by=_SID,
        check_sortedness=False,  # sorted just above
        strategy="forward",
        allow_exact_matches=False,
    )
    belongs = pl.col("next_admission").is_null() | (pl.col("visit_end") <= pl.col("next_admission"))
    return times.with_columns(
        pl.when(belongs).then(pl.col("visit_end")).otherwise(None).alias("visit_end")
    ).drop("next_admission")


def _with_events_so_far(times: pl.DataFrame, recorded: pl.DataFrame) -> pl.DataFrame:
    """Add ``events_so_far``: how many recorded events are at or before ``t``."""
    cumulative = (
        recorded.group_by(_SID, "time")
        .len()
        .sort(_SID, "time")
        .with_columns(pl.col("len").cum_sum().over(_SID).alias("events_so_far"))
        .select(_SID, "time", "events_so_far")
        .sort("time")
    )
    return (
        times.sort("prediction_time")
        .join_asof(
            cumulative,
            left_on="prediction_time",
            right_on="time",
            by=_SID,
            check_sortedness=False,  # sorted just above
        )
        .drop("time")
        .with_columns(pl.col("events_so_far").fill_null(0))
    )
