"""The model registry: immutable, checksummed model versions on disk, added from the host only.

Layout under the registry root::

    index.json                      {"models": {name: {version: {"sha256", "added", ...}}}}
    NAME/VERSION/model.safetensors  weights (safetensors only)
    NAME/VERSION/model.json         the contract (task, classes, preprocessing, versions)
    NAME/VERSION/...                post-processing, conformal calibration, model card, if any
    NAME/VERSION/manifest.json      SHA-256 of every file above

A version is written whole into a temporary folder beside its final place, every file and
the folder fsynced, then renamed into place; ``index.json`` is replaced the same way
(temp file, fsync, rename, fsync of the folder). A kill at any moment leaves either the old
state or the new one: a version folder without an index entry is invisible and is
overwritten by the next add. Versions are immutable: adding an existing version is refused,
and retiring only flags it in the index. Every load re-hashes every file against the
manifest and the manifest against the index, so a changed byte is refused.

Why by hand: MLflow's registry (optional extra here) stores pickled flavours and mutable
stages; this one holds only safetensors + JSON and has no remote write path: the HTTP
service reads it, only `medsight registry` on the host writes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from medsight.errors import InputError
from medsight.runs.contract import CONTRACT, WEIGHTS, read_run_summary
from medsight.runs.ensemble import ENSEMBLE_FILE

INDEX, MANIFEST = "index.json", "manifest.json"
#: files copied from a run when present (besides the weights and the contract); an image
#: classifier's ``decision.json`` (per-class decision weights) and ``conformal.json``, an EHR risk
#: run's ``calibration.json`` (calibration map, threshold, conformal quantile) and
#: ``codes.json`` (the words for its codes), a text classifier's ``tokenizer.json`` and a
#: tagger's ``vocabulary.json`` among them
OPTIONAL_FILES = (
    "postprocess.json",
    "conformal.json",
    "decision.json",
    "calibration.json",
    "codes.json",
    "model_card.md",
    "plan.json",
    "tokenizer.json",
    "vocabulary.json",
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value) or ".." in value:
        raise InputError(f"{what} {value!r}: use 1-64 lower-case letters, digits, '.', '_' or '-'")
    return value


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durable(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a synced temp file and a rename."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, path)
        _fsync_dir(path.parent)
    finally:
        Path(name).unlink(missing_ok=True)


class ModelRegistry:
    """A registry rooted at a folder (created on first add)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _index(self) -> dict[str, Any]:
        path = self.root / INDEX
        if not path.is_file():
            return {"models": {}}
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(index.get("models"), dict):
                raise ValueError("no models")
            return index
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, AttributeError):
            raise InputError(f"{path}: the registry index is damaged") from None

    def _save_index(self, index: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_durable(self.root / INDEX, json.dumps(index, indent=2).encode())

    def add(
        self, run_dir: Path, name: str, version: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Copy ``run_dir``'s model into the registry as ``name``/``version``.

        Args:
            run_dir: a run folder with ``model.safetensors`` and ``model.json``.
            name: model name.
            version: version label (default: one more than the highest numeric version).

        Returns:
            The version label and its index entry.

        Raises:
            InputError: a bad name or version, the version exists, the run has no readable
                contract or weights, or it is a K-fold ensemble (not registrable yet).
        """
        _check_name(name, "name")
        run_dir = Path(run_dir)
        if (run_dir / ENSEMBLE_FILE).is_file():
            raise InputError(f"{run_dir}: K-fold ensembles cannot be registered yet")
        contract = read_run_summary(run_dir)
        if not (run_dir / WEIGHTS).is_file():
            raise InputError(f"{run_dir / WEIGHTS}: missing")
        index = self._index()
        versions = index["models"].setdefault(name, {})
        if version is None:
            numbers = [int(v) for v in versions if v.isdigit()]
            version = str(max(numbers, default=0) + 1)
        _check_name(version, "version")
        if version in versions:
            raise InputError(f"{name}:{version} exists; versions are immutable")
        final = self.root / name / version
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=final.parent))
        try:
            files = [WEIGHTS, CONTRACT] + [f for f in OPTIONAL_FILES if (run_dir / f).is_file()]
            for file in files:
                shutil.copyfile(run_dir / file, staging / file)
                with open(staging / file, "rb") as f:
                    os.fsync(f.fileno())
            manifest = {f: sha256_file(staging / f) for f in files}
            _write_durable(staging / MANIFEST, json.dumps(manifest, indent=2).encode())
            _fsync_dir(staging)
            if final.exists():  # left by an add killed before its index entry: not a version
                shutil.rmtree(final)
            os.replace(staging, final)
            _fsync_dir(final.parent)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        entry = {
            "sha256": sha256_file(final / MANIFEST),
            "weights_sha256": manifest[WEIGHTS],
            "task": contract.task,
            "model_name": contract.model_name,
            "classes": contract.class_names,
            "added": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "retired": False,
        }
        versions[version] = entry
        self._save_index(index)
        return version, entry

    def list(self) -> dict[str, dict[str, Any]]:
        """``{name: {version: entry}}`` of every registered version."""
        return dict(self._index()["models"])

    def entry(self, name: str, version: str) -> dict[str, Any]:
        """The index entry of ``name``/``version``.

        Raises:
            InputError: no such model or version.
        """
        models = self._index()["models"]
        if name not in models or version not in models[name]:
            raise InputError(f"{name}:{version} is not in the registry at {self.root}")
        return dict(models[name][version])

    def retire(self, name: str, version: str) -> None:
        """Flag ``name``/``version`` retired (it stays readable for audit, never served)."""
        index = self._index()
        self.entry(name, version)
        index["models"][name][version]["retired"] = True
        self._save_index(index)

    def verified_path(self, name: str, version: str) -> Path:
        """The folder of ``name``/``version`` after checking every file's SHA-256.

        Raises:
            InputError: unknown version, or a file that is missing, extra or changed.
        """
        entry = self.entry(name, version)
        folder = self.root / _check_name(name, "name") / _check_name(version, "version")
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file() or sha256_file(manifest_path) != entry["sha256"]:
            raise InputError(f"{name}:{version}: manifest missing or changed; refusing to load")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        present = {p.name for p in folder.iterdir() if p.is_file()} - {MANIFEST}
        if present != set(manifest):
            raise InputError(f"{name}:{version}: files differ from the manifest; refusing to load")
        for file, digest in manifest.items():
            if sha256_file(folder / file) != digest:
                raise InputError(f"{name}:{version}: {file} changed; refusing to load")
        return folder
