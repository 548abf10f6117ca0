"""De-identify a folder tree: IN -> OUT (mirrored), held-back originals -> quarantine.

Each file under IN is, in this order:

* skipped and counted if it is not DICOM (no ``DICM`` marker at byte 128) or is a DICOMDIR
  (its records point at the original files; make a new one from OUT);
* an error if pydicom cannot parse it (its path and an error code are reported, nothing is
  written, the run goes on);
* quarantined if `quarantine_reason` says its pixels may carry identifying text: the
  original is copied, unchanged, to the quarantine folder (never to OUT) and its relative
  path and reason code are listed in ``QUARANTINE/reasons.jsonl``;
* otherwise de-identified with `deidentify_dataset` and written atomically to OUT.

OUT mirrors IN's folder structure with one exception: a path component equal to the file's
own Study, Series or SOP Instance UID (optionally followed by a suffix such as ``.dcm``) is
renamed to the replacement UID, since such names would link the output back to the source.
Other names are copied as they are: rename folders named after patients before sharing.
``OUT/deid_summary.json`` records the counts and the policy (the key only by fingerprint).
Nothing read from a file is printed or logged.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import MediaStorageDirectoryStorage

from medsight.errors import InputError
from medsight.imaging.io.deid.dataset import deidentify_dataset
from medsight.imaging.io.deid.keyed_hash import hashed_uid
from medsight.imaging.io.deid.policy import DeidPolicy
from medsight.imaging.io.deid.quarantine_rules import quarantine_reason
from medsight.imaging.io.deid.silence import pydicom_silenced
from medsight.imaging.io.deid.summary import DeidSummary, FileIssue
from medsight.runs.atomic import atomic_path, write_text_atomic

SUMMARY_NAME = "deid_summary.json"
REASONS_NAME = "reasons.jsonl"
_QUARANTINE_README = (
    "Files held back by `medsight deid`: these are the ORIGINALS and still contain patient\n"
    "data. reasons.jsonl gives each file's reason. Review them (or clean their pixels) before\n"
    "any use; do not copy this folder to where de-identified data is shared.\n"
)
_NAMED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def default_quarantine_dir(out_dir: Path) -> Path:
    """Where held-back originals go unless told otherwise: ``<OUT>-quarantine`` beside OUT."""
    return out_dir.parent / f"{out_dir.name}-quarantine"


def deidentify_tree(
    in_dir: Path,
    out_dir: Path,
    policy: DeidPolicy,
    quarantine_dir: Path | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> DeidSummary:
    """De-identify every DICOM file under ``in_dir`` into ``out_dir`` (see module docstring).

    Args:
        in_dir: folder read recursively; never modified.
        out_dir: output folder (created; files of earlier runs are overwritten).
        policy: key and options.
        quarantine_dir: where originals that cannot be made safe go; default
            `default_quarantine_dir`.
        on_file: called as ``on_file(done, total)`` after each file (progress display).

    Returns:
        The summary, also written to ``out_dir / "deid_summary.json"``.

    Raises:
        InputError: ``in_dir`` is not a folder, or the three folders overlap (an output inside
            the input would be read back; a quarantine inside OUT would mix originals into
            the de-identified data).
    """
    quarantine_dir = quarantine_dir or default_quarantine_dir(out_dir)
    _check_folders(in_dir, out_dir, quarantine_dir)
    files = _input_files(in_dir)
    summary = DeidSummary(
        policy=policy.describe(), files_found=len(files), quarantine_dir=str(quarantine_dir)
    )
    actions: Counter[str] = Counter()
    held: list[FileIssue] = []
    with pydicom_silenced():
        for done, path in enumerate(files, start=1):
            rel = path.relative_to(in_dir)
            _process(path, rel, out_dir, quarantine_dir, policy, summary, actions, held)
            if on_file is not None:
                on_file(done, len(files))
    summary.files_quarantined = len(held)
    summary.quarantine_reasons = dict(Counter(issue.reason for issue in held))
    summary.action_counts = dict(actions)
    if held:
        lines = [json.dumps({"path": i.path, "reason": i.reason}) for i in held]
        write_text_atomic(quarantine_dir / REASONS_NAME, "\n".join(lines) + "\n")
        write_text_atomic(quarantine_dir / "README.txt", _QUARANTINE_README)
    write_text_atomic(out_dir / SUMMARY_NAME, summary.to_json())
    return summary


def _check_folders(in_dir: Path, out_dir: Path, quarantine_dir: Path) -> None:
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: not a folder")
    src, out, held = (p.resolve() for p in (in_dir, out_dir, quarantine_dir))
    if out.is_relative_to(src) or src.is_relative_to(out):
        raise InputError(f"{out_dir}: the output folder must not overlap the input {in_dir}")
    if held.is_relative_to(out) or out.is_relative_to(held):
        raise InputError(f"{quarantine_dir}: the quarantine folder must not overlap {out_dir}")
    if held.is_relative_to(src):
        raise InputError(f"{quarantine_dir}: the quarantine folder must not be inside {in_dir}")


def _input_files(in_dir: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, names in os.walk(in_dir):
        dirs.sort()
        found.extend(Path(root) / name for name in sorted(names))
    return found


def _process(
    path: Path,
    rel: Path,
    out_dir: Path,
    quarantine_dir: Path,
    policy: DeidPolicy,
    summary: DeidSummary,
    actions: Counter[str],
    held: list[FileIssue],
) -> None:
    """Handle one file, recording its outcome in ``summary``, ``actions`` and ``held``."""
    try:
        if not _has_dicom_marker(path):
            _skip(summary, "not_dicom")
            return
        ds = dcmread(path)
        for _ in ds.iterall():  # parse every element now: a broken file fails here
            pass
    except Exception as exc:  # any parse failure of one file must not stop the run
        _fail(summary, rel, f"unreadable: {type(exc).__name__}")
        return
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
        _skip(summary, "dicomdir")
        return
    out_path = out_dir / _output_relpath(rel, ds, policy.key)
    reason = quarantine_reason(ds)
    if reason is not None:
        try:
            with atomic_path(quarantine_dir / rel) as tmp:
                shutil.copyfile(path, tmp)
            out_path.unlink(missing_ok=True)  # never leave an earlier run's output of it
        except OSError as exc:
            _fail(summary, rel, f"quarantine_failed: {type(exc).__name__}")
            return
        held.append(FileIssue(rel.as_posix(), reason))
        return
    counts: Counter[str] = Counter()
    try:
        clean = deidentify_dataset(ds, policy, counts)
    except Exception as exc:  # one odd dataset must not stop the run
        _fail(summary, rel, f"deidentify_failed: {type(exc).__name__}")
        return
    for elem in clean.group_dataset(0x0000):
        del clean[elem.tag]  # command elements are not allowed in files
    try:
        with atomic_path(out_path) as tmp:
            dcmwrite(tmp, clean, enforce_file_format=True)
    except Exception as exc:  # e.g. a value pydicom refuses to encode; the run goes on
        _fail(summary, rel, f"write_failed: {type(exc).__name__}")
        return
    actions.update(counts)
    summary.files_written += 1


def _has_dicom_marker(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def _output_relpath(rel: Path, ds: Dataset, key: str) -> Path:
    """``rel`` with components named after the file's own UIDs renamed to their hashes."""
    renames = {}
    for keyword in _NAMED_UIDS:
        value = str(ds.get(keyword, "") or "").strip()
        if value:
            renames[value] = hashed_uid(value, key)
    parts = []
    for part in rel.parts:
        stem, dot, suffix = part.rpartition(".")
        if part in renames:
            part = renames[part]
        elif dot and stem in renames:
            part = f"{renames[stem]}.{suffix}"
        parts.append(part)
    return Path(*parts)


def _skip(summary: DeidSummary, reason: str) -> None:
    summary.files_skipped += 1
    summary.skip_reasons[reason] = summary.skip_reasons.get(reason, 0) + 1


def _fail(summary: DeidSummary, rel: Path, reason: str) -> None:
    summary.files_errored += 1
    summary.errors.append(FileIssue(rel.as_posix(), reason))
