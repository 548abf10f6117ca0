"""The source header of the DICOM objects medsight derives (SR, SEG, Secondary Capture).

Type 2 patient/study attributes highdicom copies from the source may be missing from
de-identified files; an empty value is valid, so `fill_type2` adds each missing one empty.

A derived object is dated by its inputs, never by the wall clock, so that the same inputs
give a byte-identical file: the caller's date if it gives one, else the source's. highdicom
stamps the current time into a few attributes; `drop_wall_clock` takes them out again.
Dates are DA strings ``YYYYMMDD`` and times TM strings ``HHMMSS`` (no fraction).
"""

from __future__ import annotations

import datetime
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.valuerep import DA, TM

from medsight.errors import InputError

#: Type 2 patient/study attributes highdicom copies from the source
TYPE2_COPIED = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


def fill_type2(ds: Dataset) -> Dataset:
    """``ds`` with every missing `TYPE2_COPIED` attribute added empty (in place)."""
    for keyword in TYPE2_COPIED:
        if keyword not in ds:
            setattr(ds, keyword, None)
    return ds


def content_datetime_of(
    header: Dataset,
    given: datetime.datetime | None,
    where: Path,
    *,
    undated: tuple[str, str] | None = None,
) -> tuple[str, str]:
    """(ContentDate, ContentTime) for an object derived from ``header``.

    ``given`` wins; otherwise the source's StudyDate (or SeriesDate, AcquisitionDate,
    ContentDate) and the matching time (midnight when it has none), so that the output
    depends on its inputs only.

    Args:
        header: a header of the source the object is derived from.
        given: the caller's date and time, or None.
        where: the source, named in the error.
        undated: the (date, time) to use when ``given`` is None and the source has no
            valid date; None raises instead.

    Raises:
        InputError: ``given`` and ``undated`` are None and the source has no valid date,
            so nothing but the wall clock could date the output.
    """
    if given is not None:
        return given.strftime("%Y%m%d"), given.strftime("%H%M%S")
    for prefix in ("Study", "Series", "Acquisition", "Content"):
        day = _valid(header.get(f"{prefix}Date"), DA)
        if day:
            time = _valid(header.get(f"{prefix}Time"), TM)
            return day, time.split(".")[0] if time else "000000"
    if undated is not None:
        return undated
    raise InputError(
        f"{where}: the source has no StudyDate to date the output by; pass content_datetime"
    )


def _valid(value: object, vr: type[DA] | type[TM]) -> str:
    text = str(value or "").strip()
    if not text:
        return ""
    try:
        parsed = vr(text)
    except ValueError:
        return ""
    return text if parsed is not None else ""


def drop_wall_clock(ds: Dataset, day: str, time: str) -> None:
    """Remove the wall-clock stamps highdicom adds, so the output depends on inputs only."""
    for keyword in ("InstanceCreationDate", "InstanceCreationTime"):
        if keyword in ds:
            delattr(ds, keyword)
    for item in ds.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = f"{day}{time}"
