"""`medsight inspect PATH [--json] [--volume N]`: what was read, so a user can trust it.

Thin wrapper over `medsight.imaging.io.input_report.describe_input`: prints kind, modality, shape,
spacing, orientation, intensity range, slice/series counts, transfer syntax and warnings (for
a 4D NIfTI: one volume, how many there are and the dataset's channel names; for a DICOM SEG:
its segments, referenced series and geometry; for a DICOM SR: its template, findings and
measurements), or the same record as JSON. Unreadable input raises `InputError` (one line,
exit 2 in `main`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import typer


def inspect(
    path: Path = typer.Argument(..., help="DICOM file/folder, NIfTI, PNG/JPEG, .npz, dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print the record as JSON."),
    series: str | None = typer.Option(
        None, "--series", help="SeriesInstanceUID to describe when a folder holds several."
    ),
    volume: int | None = typer.Option(
        None,
        "--volume",
        "--channel",
        min=0,
        help="Volume (channel) of a 4D NIfTI to describe; the first by default.",
    ),
) -> None:
    """Describe an input: geometry, intensities, encoding and anything suspicious."""
    from medsight.imaging.io.input_report import describe_input

    with warnings.catch_warnings():
        # pydicom warns on every odd value; what matters is in the record's warnings.
        warnings.simplefilter("ignore", UserWarning)
        report = describe_input(path, series=series, volume=volume)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for line in format_report(report):
        print(line)


#: record keys listed one entry a line after the scalar keys, and the word each line starts with
_LISTS = {
    "series": "series",
    "segments": "segment",
    "referenced_series": "referenced series",
    "evidence": "evidence",
    "findings": "finding",
    "measurements": "measurement",
}


def format_report(report: dict[str, Any]) -> list[str]:
    """The record as aligned ``key: value`` lines, lists one entry a line, warnings last."""
    rows: list[tuple[str, str]] = []
    skip = {"warnings", "affine_ras", "splits", *_LISTS}
    for key, value in report.items():
        if key in skip or value is None or value == "" or value == {}:
            continue
        if key == "intensity":
            value = (
                f"{_num(value['min'])} .. {_num(value['max'])} (mean {_num(value['mean'])})"
                if value["min"] is not None
                else "no finite values"
            )
        elif key == "extent_mm":
            value = f"{_num(value[0])} .. {_num(value[1])} along the plane normal"
        elif isinstance(value, list):
            value = (
                " x ".join(_num(v) for v in value)
                if key.startswith(("shape", "spacing", "frame_size", "pixel_spacing"))
                else (", ".join(_num(v) for v in value))
            )
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        rows.append((key, str(value)))
    for split, info in (report.get("splits") or {}).items():
        rows.append((f"split {split}", f"{info['n']} images {info['image_shape']}"))
    for key, word in _LISTS.items():
        rows.extend((word, text) for text in _listed(key, report.get(key) or []))
    warnings_ = report.get("warnings", [])
    rows.append(("warnings", str(len(warnings_) or "none")))
    width = max(16, *(len(name) for name, _ in rows))
    lines = [f"{name:>{width}}: {text}" for name, text in rows]
    lines.extend(f"{'':>{width}}  - {w}" for w in warnings_)
    return lines


def _listed(key: str, entries: list[dict[str, Any]]) -> list[str]:
    """One line of text per series, segment, referenced series, finding or measurement."""
    lines = []
    for entry in entries:
        if key == "series":
            text = (
                f"{entry['series_uid'] or '(no uid)'} {entry['modality']} "
                f"{entry['n_frames']} x {entry['rows']} x {entry['columns']}"
            )
        elif key == "segments":
            text = (
                f"{entry['number']} {entry['label']!r} ({entry['category']} / {entry['type']}, "
                f"{entry['algorithm_type'].lower() or 'unknown'}), {entry['n_frames']} frame(s)"
            )
        elif key in ("referenced_series", "evidence"):
            text = f"{entry['series_uid'] or '(no uid)'}: {entry['n_instances']} instance(s)"
        elif key == "findings":
            text = f"{entry['name']} = {entry['value']}"
        else:  # measurements
            of = f" ({'; '.join(entry['qualifiers'])})" if entry["qualifiers"] else ""
            unit = f" {entry['unit']}" if entry["unit"] else ""
            text = f"{entry['name']} = {_num(entry['value'])}{unit}{of}"
        lines.append(text)
    return lines


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
