"""LabelSpec from CLI options or a spec file: validation as one-line InputErrors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from medsight.ehr.labels.label_spec import LabelSpec, label_spec_from_options
from medsight.errors import InputError


def test_options_make_a_frozen_spec() -> None:
    spec = label_spec_from_options(
        "first-code", within_days=90, codes=["ICD10CM//E11.2", " ICD10CM//E11.3"], at="age:50.5"
    )
    assert spec.codes == ("ICD10CM//E11.2", "ICD10CM//E11.3")
    assert spec.anchor == "age" and spec.anchor_age_years == 50.5
    with pytest.raises(ValueError):
        spec.within_days = 1  # type: ignore[misc]
    assert "ICD10CM//E11.2 or ICD10CM//E11.3" in spec.describe()
    assert "age 50.5 years" in spec.describe()


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [
        ("mortality", {}, "--task: task: 'mortality' is not one of death, readmission"),
        ("readmission", {"at": "each-visit"}, "readmission is predicted at each-discharge"),
        ("in-hospital-death", {}, "in-hospital-death is predicted at each-admission"),
        ("first-code", {}, "first-code needs code prefixes"),
        ("death", {"codes": ["ICD10CM//I21"]}, "codes are for first-code"),
        ("first-code", {"codes": ["E11.2"]}, "'E11.2' has no vocabulary"),
        ("death", {"at": "date:2020-13-01"}, "at: 'date:2020-13-01' is not a real date"),
        ("death", {"at": "weekly"}, "at: 'weekly' is not one of each-discharge"),
        ("death", {"at": "age:200"}, "between 0 and 130"),
        ("death", {"within_days": 0}, "within_days: Input should be greater than or equal to 1"),
    ],
)
def test_bad_options_are_one_line_errors(task: str, options: dict, message: str) -> None:
    with pytest.raises(InputError) as error:
        label_spec_from_options(task, **options)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_spec_file_holds_the_whole_spec(tmp_path: Path) -> None:
    yaml_file = tmp_path / "task.yaml"
    yaml_file.write_text(
        "task: first-code\ncodes: [ICD10CM//N18]\nwithin_days: 730\nat: each-visit\n"
    )
    spec = label_spec_from_options(str(yaml_file), within_days=5)  # the file wins
    assert spec == LabelSpec(
        task="first-code", codes=("ICD10CM//N18",), within_days=730, at="each-visit"
    )
    json_file = tmp_path / "task.json"
    json_file.write_text(spec.model_dump_json())
    assert label_spec_from_options(str(json_file)) == spec


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("gone.yaml", None, "no such label spec file"),
        ("bad.yaml", "task: [death\n", "not a readable JSON/YAML label spec"),
        ("bad.json", "{task: death}", "not a readable JSON/YAML label spec"),
        ("list.yaml", "- death\n", "must be a mapping"),
        ("extra.yaml", "task: death\nhorizon: 3\n", "horizon: Extra inputs are not permitted"),
        ("evil.yaml", "task: !!python/object/apply:os.system ['true']\n", "not a readable"),
    ],
)
def test_bad_spec_files_are_one_line_errors(
    tmp_path: Path, name: str, text: str | None, message: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError) as error:
        label_spec_from_options(str(path))
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_cli_bad_task_exits_2_with_one_line(
    cli: Callable[..., int], meds_folder: Callable[..., Path], tmp_path: Path, capsys
) -> None:
    data = meds_folder([(1, 0, "ENCOUNTER//inpatient"), (1, 2, "DISCHARGE//home")])
    out = tmp_path / "labels.parquet"
    assert (
        cli("ehr", "label", str(data), "--task", "readmission", "--at", "age:x", "-o", str(out))
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: --task: at: 'age:x'") and err.count("\n") == 1
    assert not out.exists()


def test_cli_writes_labels_and_says_what_it_dropped(
    cli: Callable[..., int], meds_folder: Callable[..., Path], tmp_path: Path, capsys
) -> None:
    data = meds_folder(
        [
            (1, 0, "ENCOUNTER//inpatient"),
            (1, 2, "DISCHARGE//home"),
            (1, 12, "ENCOUNTER//inpatient"),
            (1, 14, "DISCHARGE//home"),
        ]
    )
    out = tmp_path / "labels.csv"
    code = cli("ehr", "label", str(data), "--task", "readmission", "--within", "30", "-o", str(out))
    assert code == 0
    said = capsys.readouterr()
    assert (
        "1 prediction times of 1 subjects, 1 positive (1 excluded: 1 censored)"
        in said.out + said.err
    )
    assert out.read_text().splitlines()[0] == '"subject_id","prediction_time","boolean_value"'
