"""What names a batch output: the input's content digest and the model's SHA-256.

An input's output folder is ``OUT/<input digest>-<model digest>/``, so a rerun over the same
archive with the same model finds every finished input by its name and skips it, while a
changed series (a slice replaced) or a retrained model gets a new folder. Names carry no path
and no patient identifier: the digests stand in for them.

The model digest covers the files a release copies (`medsight.releases.model_registry`):
weights, contract and the files that change a prediction (decision weights, conformal and
risk calibration, vocabularies), for the run and for each K-fold member. A run's report,
cache or TensorBoard logs do not change predictions and are left out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from medsight.errors import InputError
from medsight.releases.model_registry import OPTIONAL_FILES
from medsight.runs.contract import CONTRACT, WEIGHTS
from medsight.runs.ensemble import ENSEMBLE_FILE, ensemble_members

#: hex characters of each digest in an output folder's name (96 + 48 bits: no collisions
#: across any archive this will see)
INPUT_DIGEST_CHARS, MODEL_DIGEST_CHARS = 24, 12
_BLOCK = 1 << 20


def _hash_file(digest: hashlib._Hash, path: Path) -> None:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)


def input_digest(source: Path) -> str:
    """SHA-256 (hex) over the relative names and bytes of every file of ``source``.

    A DICOM series folder is hashed file by file in name order (hidden files skipped), so
    the digest does not depend on where the archive is mounted.

    Raises:
        InputError: ``source`` is missing, unreadable, or a folder without files.
    """
    source = Path(source)
    digest = hashlib.sha256()
    try:
        if source.is_file():
            _hash_file(digest, source)
            return digest.hexdigest()
        if not source.is_dir():
            raise InputError(f"{source}: no such file or folder")
        files = sorted(
            p
            for p in source.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.parts[-1:])
        )
        if not files:
            raise InputError(f"{source}: an empty folder")
        for path in files:
            digest.update(path.relative_to(source).as_posix().encode() + b"\0")
            _hash_file(digest, path)
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror})") from None
    return digest.hexdigest()


def model_digest(run_dir: Path) -> str:
    """SHA-256 (hex) of the run's prediction-defining files, names included.

    Raises:
        InputError: the run has no weights or contract (the command that makes one is named).
    """
    run_dir = Path(run_dir)
    folders = ensemble_members(run_dir) or [run_dir]
    digest = hashlib.sha256()
    if (run_dir / ENSEMBLE_FILE).is_file():
        digest.update(ENSEMBLE_FILE.encode() + b"\0")
        _hash_file(digest, run_dir / ENSEMBLE_FILE)
    for folder in folders:
        for required in (WEIGHTS, CONTRACT):
            if not (folder / required).is_file():
                raise InputError(
                    f"{folder / required}: missing; train a model first (`medsight train`)"
                )
        for name in (WEIGHTS, CONTRACT, *OPTIONAL_FILES):
            path = folder / name
            if path.is_file():
                digest.update(path.relative_to(run_dir).as_posix().encode() + b"\0")
                _hash_file(digest, path)
    return digest.hexdigest()


def output_name(input_sha256: str, model_sha256: str) -> str:
    """The output folder's name for an input and a model (both hex digests)."""
    return f"{input_sha256[:INPUT_DIGEST_CHARS]}-{model_sha256[:MODEL_DIGEST_CHARS]}"
