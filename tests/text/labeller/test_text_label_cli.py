"""`medsight text label` through the CLI on 40 of the radlabels reports: labels.csv,
agreement files with intervals, nothing from a report on the console, one-line errors."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest

from medsight.cli.main import main

RADLABELS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "text" / "radlabels"
N_REPORTS = 40


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first 40 radlabels reports (a folder of .txt) and their silver labels."""
    if not (RADLABELS / "labels.json").exists():
        pytest.skip("radlabels reports not found beside the repository (../shared/data/text)")
    folder = tmp_path_factory.mktemp("radlabels") / "reports"
    folder.mkdir()
    for path in sorted((RADLABELS / "reports").glob("*.txt"))[:N_REPORTS]:
        shutil.copy(path, folder / path.name)
    return folder, RADLABELS / "labels.json"


def run(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["medsight", "text", "label", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code or 0


def test_labels_and_agreement_on_radlabels_reports(
    reports: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, gold = reports
    out = tmp_path / "out"
    code = run(monkeypatch, str(folder), "-o", str(out), "--gold", str(gold), "--n-boot", "200")
    assert code == 0
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert [r["note_id"] for r in rows] == sorted(p.stem for p in folder.glob("*.txt"))
    # synth_0001: "right-sided chest tube", "The ET tube is 9 cm above the carina"
    first = rows[0]
    assert (first["intercostal_drain"], first["endotracheal_tube"]) == ("present", "present")
    record = json.loads((out / "agreement.json").read_text())
    assert record["n_reports_scored"] == N_REPORTS
    assert record["n_reference_unmatched"] == 1000 - N_REPORTS
    overall = record["agreement"]["overall"]["kappa"]
    assert 0.6 < overall["point"] < 1.0 and overall["low"] <= overall["point"] <= overall["high"]
    effusion = record["agreement"]["findings"]["pleural_effusion"]
    assert sum(map(sum, effusion["confusion"])) == N_REPORTS
    assert all(len(rows) <= 5 for rows in record["examples"].values())
    assert "<table>" in (out / "agreement.html").read_text()
    shown = capsys.readouterr()
    assert "kappa" in shown.out
    report_text = (folder / "synth_0001.txt").read_text()
    assert "right-sided chest tube" in report_text
    assert "chest tube" not in shown.out + shown.err


def test_bad_gold_is_one_line_and_exit_2(
    reports: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, _ = reports
    gold = tmp_path / "labels.json"
    gold.write_text(json.dumps({"synth_0001": {"pneumothorax": "maybe"}}))
    assert run(monkeypatch, str(folder), "-o", str(tmp_path / "o"), "--gold", str(gold)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "synth_0001, finding pneumothorax" in err
    assert len(err.splitlines()) == 1
