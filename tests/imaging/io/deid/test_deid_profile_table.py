"""The packaged PS3.15 Table E.1-1: complete, well-formed, and resolved by the documented rule."""

from __future__ import annotations

from importlib import resources

import pytest
from pydicom.tag import Tag

from medsight.imaging.io.deid.profile_table import basic_profile, parse_profile_csv, resolve_action


def test_table_has_every_row_of_the_standard_table() -> None:
    table = basic_profile()
    # 2026c lists 655 attributes (incl. group wildcards) plus the private-attributes row
    assert len(table.rows) == 656
    assert table.private_row is not None and table.private_row.basic_action == "X"
    wildcards = {row.tag for row in table.rows if "x" in row.tag}
    assert wildcards == {"(50xx,xxxx)", "(60xx,3000)", "(60xx,4000)"}
    assert len({row.tag for row in table.rows}) == len(table.rows)


def test_table_file_names_its_source_and_edition() -> None:
    text = (
        resources.files("medsight.imaging.io.deid").joinpath("basic_profile.csv").read_text("utf-8")
    )
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    assert "PS3.15 2026c" in header
    assert "dicomfields_2026c.py" in header


@pytest.mark.parametrize(
    ("keyword", "code", "action"),
    [
        ("PatientName", "Z", "Z"),
        ("PatientID", "Z/D", "D"),
        ("PatientBirthDate", "Z", "Z"),
        ("StudyInstanceUID", "U", "U"),
        ("ReferencedSOPInstanceUID", "U", "U"),
        ("InstitutionName", "X/Z/D", "D"),
        ("AcquisitionDate", "X/Z", "Z"),
        ("SeriesDate", "X/D", "D"),
        ("ReferencedImageSequence", "X/Z/U*", "U"),
        ("StudyDescription", "X", "X"),
        ("MediaStorageSOPInstanceUID", "U", "U"),
    ],
)
def test_known_rows_and_their_resolved_action(keyword: str, code: str, action: str) -> None:
    row = basic_profile().lookup(Tag(keyword))
    assert row is not None and row.keyword == keyword
    assert row.basic_profile == code
    assert row.basic_action == action


@pytest.mark.parametrize(
    ("tag", "name"),
    [(0x50023000, "Curve Data"), (0x501E0010, "Curve Data"), (0x60023000, "Overlay Data")],
)
def test_group_wildcards_match_every_repeating_group(tag: int, name: str) -> None:
    row = basic_profile().lookup(Tag(tag))
    assert row is not None and row.name == name and row.basic_action == "X"


def test_untabled_attributes_are_not_governed() -> None:
    assert basic_profile().lookup(Tag("Rows")) is None
    assert basic_profile().lookup(Tag("SOPClassUID")) is None


def test_options_columns_cover_characteristics_and_dates() -> None:
    table = basic_profile()
    kept = {row.keyword for row in table.rows if row.rtn_pat_chars_opt == "K"}
    assert {"PatientSex", "PatientAge", "PatientSize", "PatientWeight"} <= kept
    longitudinal = {row.keyword for row in table.rows if row.is_longitudinal}
    assert {"StudyDate", "SeriesDate", "AcquisitionDateTime", "StudyTime"} <= longitudinal
    assert "PatientBirthDate" not in longitudinal


_HEADER = "tag,keyword,name,basic_profile,rtn_pat_chars_opt,rtn_long_full_dates_opt,"
_HEADER += "rtn_long_modif_dates_opt\n"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('"(0010,0010)",PatientName,Patients Name,Y,,,', "action code"),
        ("(0010,0010),PatientName,Patients Name,Z,,,", "number of columns"),
        ('"(0010,001)",PatientName,Patients Name,Z,,,', "malformed tag"),
    ],
)
def test_corrupt_table_is_rejected(row: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_profile_csv(_HEADER + row + "\n")
    with pytest.raises(ValueError, match="action code"):
        resolve_action("Q")
