"""The model registry: immutable versions, SHA-256 checked on load, atomic under failure."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medsight.errors import InputError
from medsight.imaging.models.checkpoint import ModelContract, save_checkpoint
from medsight.imaging.models.registry import create_model
from medsight.imaging.preprocess.contract import PreprocessContract
from medsight.releases import model_registry
from medsight.releases.model_registry import ModelRegistry


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    contract = ModelContract(
        model_name="lungct-cnn",
        model_kwargs={"depth": 2},
        class_names=["a", "b", "c"],
        preprocess=PreprocessContract(),
        seed=0,
    )
    save_checkpoint(folder, create_model("lungct-cnn", depth=2), contract)
    (folder / "conformal.json").write_text('{"qhat": 0.5}')
    return folder


def test_add_list_show_retire(run: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "reg")
    version, entry = registry.add(run, "lung-ct")
    assert version == "1" and entry["task"] == "classify" and not entry["retired"]
    assert registry.add(run, "lung-ct")[0] == "2"
    folder = registry.verified_path("lung-ct", "1")
    assert {p.name for p in folder.iterdir()} == {
        "model.safetensors",
        "model.json",
        "conformal.json",
        "manifest.json",
    }
    registry.retire("lung-ct", "1")
    assert (
        registry.list()["lung-ct"]["1"]["retired"]
        and not registry.list()["lung-ct"]["2"]["retired"]
    )


def test_versions_are_immutable(run: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "reg")
    registry.add(run, "m", "v1")
    with pytest.raises(InputError, match="immutable"):
        registry.add(run, "m", "v1")


@pytest.mark.parametrize("bad", ["../evil", "UPPER", "", "a/b", "x" * 65])
def test_names_cannot_escape_the_registry(run: Path, tmp_path: Path, bad: str) -> None:
    with pytest.raises(InputError, match="lower-case"):
        ModelRegistry(tmp_path / "reg").add(run, bad)


def test_a_changed_byte_is_refused_on_load(run: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "reg")
    registry.add(run, "m")
    weights = tmp_path / "reg" / "m" / "1" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="model.safetensors changed"):
        registry.verified_path("m", "1")


def test_an_extra_file_or_edited_manifest_is_refused(run: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "reg")
    registry.add(run, "m")
    folder = tmp_path / "reg" / "m" / "1"
    (folder / "evil.py").write_text("print(1)")
    with pytest.raises(InputError, match="files differ"):
        registry.verified_path("m", "1")
    (folder / "evil.py").unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model.json"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="manifest missing or changed"):
        registry.verified_path("m", "1")


def test_a_failed_add_leaves_the_previous_state(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(tmp_path / "reg")
    registry.add(run, "m")
    before = (tmp_path / "reg" / "index.json").read_bytes()

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(model_registry.shutil, "copyfile", crash)
    with pytest.raises(OSError):
        registry.add(run, "m")
    assert (tmp_path / "reg" / "index.json").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "reg" / "m").iterdir()) == ["1"]


def test_a_kill_mid_add_never_shows_a_partial_version(run: Path, tmp_path: Path) -> None:
    """SIGKILL the process while it copies: the registry stays as it was, and usable."""
    root = tmp_path / "reg"
    ModelRegistry(root).add(run, "m")
    script = (
        "import os, shutil, sys\n"
        "from pathlib import Path\n"
        "from medsight.releases import model_registry as r\n"
        "real = shutil.copyfile\n"
        "def copy(a, b):\n"
        "    real(a, b)\n"
        "    if Path(b).name == 'model.json':\n"
        "        os.kill(os.getpid(), 9)\n"
        "r.shutil.copyfile = copy\n"
        f"r.ModelRegistry(Path({str(root)!r})).add(Path({str(run)!r}), 'm')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert result.returncode == -9
    registry = ModelRegistry(root)
    assert list(registry.list()["m"]) == ["1"]
    registry.verified_path("m", "1")
    assert registry.add(run, "m")[0] == "2"
    # what the kill left is a hidden staging folder, never a version
    leftovers = [p.name for p in (root / "m").iterdir() if p.name not in ("1", "2")]
    assert all(name.startswith(".") for name in leftovers)


def test_ensembles_and_runs_without_weights_are_refused(run: Path, tmp_path: Path) -> None:
    (run / "model.safetensors").unlink()
    with pytest.raises(InputError, match="missing"):
        ModelRegistry(tmp_path / "reg").add(run, "m")
    (run / "ensemble.json").write_text('{"members": ["fold_1"]}')
    with pytest.raises(InputError, match="ensembles"):
        ModelRegistry(tmp_path / "reg").add(run, "m")


@pytest.mark.slow  # one `medsight registry` process per step
def test_cli_add_list_show_retire(run: Path, tmp_path: Path) -> None:
    root = str(tmp_path / "reg")

    def medsight(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "medsight", "registry", *args, "--registry", root],
            capture_output=True,
            text=True,
            timeout=120,
        )

    added = medsight("add", str(run), "--name", "lung")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["version"] == "1"
    assert "lung" in medsight("list").stdout
    shown = medsight("show", "lung:1")
    assert shown.returncode == 0 and json.loads(shown.stdout)["task"] == "classify"
    assert medsight("retire", "lung:1").returncode == 0
    missing = medsight("show", "lung:9")
    assert missing.returncode == 2 and "not in the registry" in missing.stderr
