"""`medsight deid` through typer: options, exit codes, and no patient data in any output."""

from __future__ import annotations

import contextlib
import logging
import shutil
import warnings
from pathlib import Path

import pytest
import typer
from pydicom import dcmread
from typer.testing import CliRunner, Result

from medsight.cli.deid import KEY_ENV, deid
from medsight.errors import InputError
from medsight.imaging.io.deid.silence import pydicom_silenced
from medsight.imaging.synth.chest_ct import plan_cohort, write_chest_ct_dataset

KEY = "cli-test-key-0123456789"
N_CASES, SEED = 2, 3

app = typer.Typer()
app.command()(deid)


@app.callback()
def _root() -> None:
    """Test app holding the one command."""


@pytest.fixture(scope="module")
def synth_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic CT series plus one file whose invalid UID embeds the patient's surname."""
    out = tmp_path_factory.mktemp("cli") / "in"
    write_chest_ct_dataset(out, N_CASES, seed=SEED, workers=1)
    surname = plan_cohort(N_CASES, SEED)[0].identity.patient_name.split("^")[0]
    source = sorted((out / "series" / "case_0001").glob("*.dcm"))[0]
    with pydicom_silenced():
        ds = dcmread(source)
        ds.StudyID = surname[:16]
        ds.SOPInstanceUID = f"1.2.{surname}"  # pydicom warns, quoting it, when it reads this
        ds.save_as(out / "odd.dcm", enforce_file_format=True)
    return out


def _phi() -> set[str]:
    """Every identifying value the synthetic cohort wrote."""
    values: set[str] = set()
    for spec in plan_cohort(N_CASES, SEED):
        who = spec.identity
        values |= {who.patient_id, who.accession_number, who.birth_date, who.institution}
        values |= set(who.patient_name.split("^")) | {who.referring_physician}
    return values


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["deid", *args], env=env, catch_exceptions=True)


def _all_output(result: Result) -> str:
    parts = [result.output]
    for stream in ("stdout", "stderr"):
        with contextlib.suppress(ValueError, AttributeError):  # stream not captured apart
            parts.append(getattr(result, stream))
    return "\n".join(parts)


def test_run_prints_and_logs_no_patient_data(
    synth_in: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _invoke(str(synth_in), str(tmp_path / "out"), "--key", KEY)
    assert result.exit_code == 0, result.output
    text = _all_output(result) + caplog.text + "\n".join(str(w.message) for w in caught)
    assert "written" in text and "summary:" in text
    text += text.replace("\n", "")  # rich wraps long lines
    leaked = sorted(value for value in _phi() if value in text)
    assert leaked == []
    summary = (tmp_path / "out" / "deid_summary.json").read_text()
    assert sorted(value for value in _phi() if value in summary) == []
    assert KEY not in text and KEY not in summary


def test_output_files_hold_no_patient_data(synth_in: Path, tmp_path: Path) -> None:
    result = _invoke(str(synth_in), str(tmp_path / "out"), "--key", KEY)
    assert result.exit_code == 0
    files = sorted((tmp_path / "out").rglob("*.dcm"))
    assert len(files) == len(list(synth_in.rglob("*.dcm")))
    for path in files[::7] + [tmp_path / "out" / "odd.dcm"]:
        data = path.read_bytes()
        assert [v for v in _phi() if v.encode() in data] == []


def test_characteristics_option_keeps_sex(synth_in: Path, tmp_path: Path) -> None:
    args = [str(synth_in), str(tmp_path / "out"), "--key", KEY]
    assert _invoke(*args, "--keep-patient-characteristics").exit_code == 0
    ds = dcmread(tmp_path / "out" / "series" / "case_0001" / "IM0001.dcm")
    assert ds.PatientSex == plan_cohort(N_CASES, SEED)[0].identity.sex
    assert "113108" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]


def test_key_from_environment_matches_key_option(synth_in: Path, tmp_path: Path) -> None:
    assert _invoke(str(synth_in), str(tmp_path / "a"), "--key", KEY).exit_code == 0
    assert _invoke(str(synth_in), str(tmp_path / "b"), env={KEY_ENV: KEY}).exit_code == 0
    rel = Path("series") / "case_0002" / "IM0003.dcm"
    assert (
        dcmread(tmp_path / "a" / rel).SOPInstanceUID == dcmread(tmp_path / "b" / rel).SOPInstanceUID
    )


def test_without_key_a_random_one_is_used_and_said(synth_in: Path, tmp_path: Path) -> None:
    result = _invoke(str(synth_in), str(tmp_path / "a"), env={KEY_ENV: ""})
    assert result.exit_code == 0
    assert "random key" in _all_output(result) and "not be linkable" in _all_output(result)
    assert _invoke(str(synth_in), str(tmp_path / "b"), env={KEY_ENV: ""}).exit_code == 0
    rel = Path("series") / "case_0001" / "IM0001.dcm"
    assert (
        dcmread(tmp_path / "a" / rel).SOPInstanceUID != dcmread(tmp_path / "b" / rel).SOPInstanceUID
    )


def test_errored_file_gives_nonzero_exit_and_its_path(synth_in: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    shutil.copytree(synth_in / "series" / "case_0001", src)
    (src / "bad.dcm").write_bytes(bytes(128) + b"DICM" + b"\x02\x00\x10\x00\x01\x02")
    result = _invoke(str(src), str(tmp_path / "out"), "--key", KEY)
    assert result.exit_code == 1
    assert "bad.dcm" in _all_output(result)


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--dates", "blur"], "--dates"), (["--key", "short"], "16 characters")],
)
def test_user_errors_raise_input_error(
    synth_in: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = _invoke(str(synth_in), str(tmp_path / "out"), *extra)
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)


def test_help_documents_the_options() -> None:
    result = CliRunner().invoke(app, ["deid", "--help"])
    assert result.exit_code == 0
    for option in ("--key", "--dates", "--keep-patient-characteristics", "--quarantine"):
        assert option in result.output
