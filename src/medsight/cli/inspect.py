"""`medsight inspect PATH [--json]`: what was read, so a user can trust it before training.

Thin wrapper over `medsight.imaging.io.input_report.describe_input`: prints kind, modality, shape,
spacing, orientation, intensity range, slice/series counts, transfer syntax and warnings, or
the same record as JSON. Unreadable input raises `InputError` (one line, exit 2 in `main`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import typer

from medsight.imaging.io.input_report import describe_input


def inspect(
    path: Path = typer.Argument(..., help="DICOM file/folder, NIfTI, PNG/JPEG, .npz, dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print the record as JSON."),
    series: str | None = typer.Option(
        None, "--series", help="SeriesInstanceUID to describe when a folder holds several."
    ),
) -> None:
    """Describe an input: geometry, intensities, encoding and anything suspicious."""
    with warnings.catch_warnings():
        # pydicom warns on every odd value; what matters is in the record's warnings.
        warnings.simplefilter("ignore", UserWarning)
        report = describe_input(path, series=series)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for line in format_report(report):
        print(line)


def format_report(report: dict[str, Any]) -> list[str]:
    """The record as aligned ``key: value`` lines, warnings last."""
    lines = []
    skip = {"warnings", "affine_ras", "series", "splits"}
    for key, value in report.items():
        if key in skip or value is None or value == "":
            continue
        if key == "intensity":
            value = (
                f"{_num(value['min'])} .. {_num(value['max'])} (mean {_num(value['mean'])})"
                if value["min"] is not None
                else "no finite values"
            )
        elif isinstance(value, list):
            value = (
                " x ".join(_num(v) for v in value)
                if key.startswith(("shape", "spacing"))
                else (", ".join(_num(v) for v in value))
            )
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        lines.append(f"{key:>16}: {value}")
    for split, info in report.get("splits", {}).items():
        lines.append(f"{'split ' + split:>16}: {info['n']} images {info['image_shape']}")
    for entry in report.get("series", []):
        lines.append(
            f"{'series':>16}: {entry['series_uid'] or '(no uid)'} {entry['modality']} "
            f"{entry['n_frames']} x {entry['rows']} x {entry['columns']}"
        )
    warnings_ = report.get("warnings", [])
    lines.append(f"{'warnings':>16}: {len(warnings_) or 'none'}")
    lines.extend(f"{'':>16}  - {w}" for w in warnings_)
    return lines


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
