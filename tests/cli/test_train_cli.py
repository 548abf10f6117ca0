"""`medsight train` refuses bad inputs before any training starts."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test runs `python -m medsight train`


def medsight(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsight", *args], capture_output=True, text=True, timeout=300
    )


def _manifest(tmp: Path, rows: list[str]) -> Path:
    path = tmp / "manifest.csv"
    path.write_text("path,label,patient_id\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def images(small_dataset: Path) -> list[Path]:
    return sorted((small_dataset / "series").iterdir())


def _run(manifest: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return medsight("train", str(manifest), "-o", str(tmp / "run"), "--epochs", "1", *extra)


def test_label_not_in_classes(images: list[Path], tmp_path: Path) -> None:
    rows = [f"{p},{'a' if i % 2 else 'b'},p{i}" for i, p in enumerate(images)]
    result = _run(_manifest(tmp_path, rows), tmp_path, "--classes", "a,c")
    assert result.returncode == 2 and "not in the classes" in result.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_class_without_cases(images: list[Path], tmp_path: Path) -> None:
    rows = [f"{p},{'a' if i % 2 else 'b'},p{i}" for i, p in enumerate(images)]
    result = _run(_manifest(tmp_path, rows), tmp_path, "--classes", "a,b,c")
    assert result.returncode == 2 and "'c' have no cases" in result.stderr


def test_fewer_patients_than_folds(images: list[Path], tmp_path: Path) -> None:
    rows = [f"{p},{'a' if i % 2 else 'b'},p{i}" for i, p in enumerate(images)]
    result = _run(_manifest(tmp_path, rows), tmp_path, "--folds", "10")
    assert result.returncode == 2 and "patient" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_image(tmp_path: Path) -> None:
    result = _run(_manifest(tmp_path, [f"{tmp_path / 'nope.nii.gz'},a,p1"]), tmp_path)
    assert result.returncode == 2 and "nope.nii.gz" in result.stderr
