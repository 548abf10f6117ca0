"""What a built-in label means: the task, its outcome window, its prediction times, exclusions.

A `LabelSpec` is the one config of `medsight ehr label`; it is written into the labels
parquet's metadata (with its `LabelSpec.describe` sentence) so that a run's report and model
card can state the label definition. Build one from the CLI's options, or from a JSON/YAML
file that holds the whole spec, with `label_spec_from_options`.

Tasks (the outcome; windows are ``(prediction_time, prediction_time + within_days]``):

- ``death``: a ``MEDS_DEATH`` event in the window.
- ``readmission``: an ``ENCOUNTER//inpatient`` start in the window after each discharge.
- ``first-code``: the subject's first event whose code starts with one of ``codes``.
- ``in-hospital-death``: death before the admission that the prediction time belongs to
  ends (its discharge), and within ``within_days``: MIMIC's in-hospital mortality.

Prediction times (``at``):

- ``each-discharge``: every ``DISCHARGE//*`` event time.
- ``each-visit``: every ``ENCOUNTER//*`` event time (a visit's start).
- ``each-admission``: every ``ENCOUNTER//inpatient`` event time.
- ``date:YYYY-MM-DD``: that date at 00:00, once per subject.
- ``age:YEARS``: the subject's ``MEDS_BIRTH`` time plus YEARS (whole years are birthdays).

``hours_after`` moves every prediction time that many hours later (the outcome window and
the exclusions follow it; an admission that has ended by then is dropped).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medsight.errors import InputError

Task = Literal["death", "readmission", "first-code", "in-hospital-death"]
TASKS: tuple[str, ...] = ("death", "readmission", "first-code", "in-hospital-death")
ANCHORS: tuple[str, ...] = ("each-discharge", "each-visit", "each-admission")
SPEC_SUFFIXES = (".json", ".yaml", ".yml")
_DATE = re.compile(r"^date:(\d{4}-\d{2}-\d{2})$")
_AGE = re.compile(r"^age:(\d+(?:\.\d+)?)$")

_OUTCOMES = {
    "death": "death (MEDS_DEATH)",
    "readmission": "an inpatient admission (ENCOUNTER//inpatient)",
    "in-hospital-death": "death (MEDS_DEATH) before the admission's discharge",
}
_ANCHOR_WORDS = {
    "each-discharge": "each discharge (DISCHARGE//*)",
    "each-visit": "the start of each visit (ENCOUNTER//*)",
    "each-admission": "each inpatient admission (ENCOUNTER//inpatient)",
}


class LabelSpec(BaseModel):
    """A built-in label task (see the module docstring for each field's values).

    Attributes:
        task: the outcome (death, readmission, first-code, in-hospital-death).
        within_days: the outcome window's length after each prediction time.
        codes: first-code: code prefixes (``ICD10CM//E11.2`` matches ``ICD10CM//E11.21``).
        at: the prediction times.
        min_history_days: drop prediction times less than this many days after the
            subject's first recorded event.
        min_events: drop prediction times with fewer recorded events at or before them.
        censor: drop prediction times whose records end before the window closes with no
            outcome and no death (the label is unknown). ``False`` treats the records as
            complete (no recorded outcome = no outcome), as MIMIC-derived benchmarks do.
        hours_after: predict this many hours after each time ``at`` names (48 with
            each-admission: in-hospital mortality from the first 48 hours of a stay).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: Task
    within_days: int = Field(365, ge=1)
    codes: tuple[str, ...] = ()
    at: str = "each-discharge"
    min_history_days: int = Field(0, ge=0)
    min_events: int = Field(1, ge=0)
    censor: bool = True
    hours_after: float = Field(0.0, ge=0, le=24 * 365)

    @field_validator("codes")
    @classmethod
    def _codes_have_vocabulary(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(c.strip() for c in codes if c.strip())
        for code in cleaned:
            vocab, sep, value = code.partition("//")
            if not (code.startswith("MEDS_") or (sep and vocab and value)):
                raise ValueError(
                    f"code prefix {code!r} has no vocabulary (expected VOCAB//value, "
                    "e.g. ICD10CM//E11.2)"
                )
        return cleaned

    @field_validator("at")
    @classmethod
    def _at_is_known(cls, at: str) -> str:
        at = at.strip()
        if at in ANCHORS:
            return at
        date = _DATE.match(at)
        if date:
            try:
                dt.date.fromisoformat(date.group(1))
            except ValueError:
                raise ValueError(f"{at!r} is not a real date") from None
            return at
        age = _AGE.match(at)
        if age:
            if not 0 <= float(age.group(1)) < 130:
                raise ValueError(f"{at!r}: the age must be between 0 and 130 years")
            return at
        raise ValueError(f"{at!r} is not one of {', '.join(ANCHORS)}, date:YYYY-MM-DD or age:YEARS")

    @model_validator(mode="after")
    def _task_fits_anchor(self) -> LabelSpec:
        if self.task == "first-code" and not self.codes:
            raise ValueError("first-code needs code prefixes (--codes ICD10CM//E11.2,...)")
        if self.task != "first-code" and self.codes:
            raise ValueError(f"codes are for first-code, not {self.task}")
        if self.task == "readmission" and self.at != "each-discharge":
            raise ValueError("readmission is predicted at each-discharge")
        if self.task == "in-hospital-death" and self.at != "each-admission":
            raise ValueError("in-hospital-death is predicted at each-admission")
        return self

    # -- the parsed prediction times -----------------------------------------------------
    @property
    def anchor(self) -> str:
        """``each-discharge``, ``each-visit``, ``each-admission``, ``date`` or ``age``."""
        return self.at if self.at in ANCHORS else self.at.split(":", 1)[0]

    @property
    def anchor_date(self) -> dt.datetime | None:
        """The fixed prediction date (``at = date:...``), at 00:00."""
        date = _DATE.match(self.at)
        return dt.datetime.fromisoformat(date.group(1)) if date else None

    @property
    def anchor_age_years(self) -> float | None:
        """The fixed prediction age in years (``at = age:...``)."""
        age = _AGE.match(self.at)
        return float(age.group(1)) if age else None

    def describe(self) -> str:
        """The label definition in words, for reports and model cards."""
        if self.task == "first-code":
            outcome = "a first code starting with " + " or ".join(self.codes)
        else:
            outcome = _OUTCOMES[self.task]
        if self.anchor == "date":
            when = f"{self.at[5:]} (00:00)"
        elif self.anchor == "age":
            when = f"age {self.at[4:]} years"
        else:
            when = _ANCHOR_WORDS[self.at]
        if self.hours_after:
            when = f"{self.hours_after:g} hours after {when}"
        dropped = ["they fall outside the subject's records"]
        if self.task == "in-hospital-death":
            dropped.insert(0, "the admission had ended by then")
        if self.task in ("death", "in-hospital-death"):
            dropped.insert(0, "the subject died at or before them")
        else:
            dropped.insert(0, "the subject has died at or before them")
            if self.task == "first-code":
                dropped.insert(0, "the outcome came at or before them")
        if self.min_history_days:
            dropped.append(f"the subject has under {self.min_history_days} days of history")
        if self.min_events > 1:
            dropped.append(f"the subject has fewer than {self.min_events} recorded events so far")
        if self.censor:
            dropped.append(
                "the records end before the window closes with neither outcome nor death"
            )
        complete = (
            ""
            if self.censor
            else " Records are taken as complete: no recorded outcome is a negative."
        )
        return (
            f"Positive when {outcome} occurs within {self.within_days} days after {when}, "
            f"i.e. in (prediction time, prediction time + {self.within_days} days]. "
            f"Prediction times are dropped when {'; when '.join(dropped)}.{complete}"
        )


def label_spec_from_options(
    task: str,
    *,
    within_days: int = 365,
    codes: list[str] | tuple[str, ...] = (),
    at: str = "each-discharge",
    min_history_days: int = 0,
    min_events: int = 1,
    censor: bool = True,
    hours_after: float = 0.0,
) -> LabelSpec:
    """The spec from the CLI's options, or from a JSON/YAML file named by ``task``.

    A spec file holds the whole spec (``{"task": "death", "within_days": 30, ...}``); its
    missing fields take `LabelSpec`'s defaults and the other options are ignored.

    Raises:
        InputError: an unknown task or anchor, a spec file that is missing, unreadable or not
            a mapping, or values that break the spec's rules (one line, naming the field).
    """
    if task.lower().endswith(SPEC_SUFFIXES) or (task not in TASKS and Path(task).is_file()):
        path = Path(task)
        return _validated(_read_spec_file(path), str(path))
    fields: dict[str, Any] = {
        "task": task,
        "within_days": within_days,
        "codes": tuple(codes),
        "at": at,
        "min_history_days": min_history_days,
        "min_events": min_events,
        "censor": censor,
        "hours_after": hours_after,
    }
    return _validated(fields, "--task")


def _read_spec_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path}: no such label spec file")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable JSON/YAML label spec ({first})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a label spec must be a mapping of field: value")
    return data


def _validated(fields: dict[str, Any], source: str) -> LabelSpec:
    try:
        return LabelSpec.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "spec"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "literal_error":
            message = f"{error['input']!r} is not one of {', '.join(TASKS)}"
        raise InputError(f"{source}: {where}: {message}") from None
