"""The segmentation evaluation as a self-contained HTML report, or a section of another one.

The report shows ``segmentation_summary.summarise_segmentation``'s output: per structure
the mean Dice, IoU, HD95, surface Dice and volume difference with their patient-bootstrap
95% intervals, lesion detection rates, the worst and typical cases with their overlays
(``explain.segmentation_overlay``), the validation Dice per epoch and free-text notes.

It is built like the classification report (``html_report``), whose Jinja environment
(autoescape on, so a case ID or caption is always shown as text) and page CSS it reuses:
images are inlined as ``data:image/png;base64`` URIs, and there is no JavaScript and no
network access. The template is ``templates/segmentation_report.html.j2``; all numbers are
formatted here, so the template only lays out text.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from medsight import __version__
from medsight.evaluate.report.figures import FIGSIZE_IN, _png_bytes
from medsight.evaluate.report.html_report import TEMPLATE_NAME as PAGE_TEMPLATE
from medsight.evaluate.report.html_report import _environment
from medsight.runs.atomic import write_text_atomic

TEMPLATE_NAME = "segmentation_report.html.j2"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUMMARY_KEYS = (
    "n_cases",
    "n_patients",
    "n_boot",
    "alpha",
    "ci_method",
    "class_names",
    "per_class",
    "worst_cases",
)
# (summary metric, column heading, decimals)
METRIC_COLUMNS = (
    ("dice", "Dice", 3),
    ("iou", "IoU", 3),
    ("hd95_mm", "HD95 (mm)", 2),
    ("surface_dice", "Surface Dice", 3),
    ("volume_diff_ml", "Volume difference (mL)", 2),
)
DISCLAIMER = (
    "medsight is a research and assistive tool. These results describe a model on the data "
    "named above; it is not a medical device and must not be used for diagnosis or any "
    "clinical decision."
)

Overlay = tuple[str, Image.Image | Path]


def format_estimate(ci: Mapping[str, Any] | None, digits: int = 3) -> str:
    """A point estimate with its interval, e.g. ``"0.912 (0.881–0.934)"``.

    Args:
        ci: ``{"point", "low", "high", ...}`` as ``bootstrap`` makes it; ``None`` values
            (undefined) are shown as ``n/a``.
        digits: Decimals shown.

    Returns:
        ``"point (low–high)"``, ``"point (n/a)"`` without an interval, or ``"n/a"``.
    """
    if ci is None or ci.get("point") is None or not math.isfinite(ci["point"]):
        return "n/a"
    point, low, high = ci["point"], ci.get("low"), ci.get("high")
    if low is None or high is None:
        return f"{point:.{digits}f} (n/a)"
    return f"{point:.{digits}f} ({low:.{digits}f}\u2013{high:.{digits}f})"


def _dice_text(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


def png_bytes(image: Image.Image | Path) -> bytes:
    """PNG bytes of an image, or of an image file (a non-PNG file is re-encoded).

    Raises:
        FileNotFoundError: If a path does not exist.
        PIL.UnidentifiedImageError: If a file is not an image PIL can read.
    """
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    data = Path(image).read_bytes()
    if data.startswith(PNG_SIGNATURE):
        return data
    with Image.open(io.BytesIO(data)) as opened:
        return png_bytes(opened)


@functools.cache
def _page_css() -> str:
    """The classification report's CSS, read from its template so both pages look alike."""
    environment = _environment()
    assert environment.loader is not None
    source, _, _ = environment.loader.get_source(environment, PAGE_TEMPLATE)
    found = re.search(r"<style>(.*?)</style>", source, flags=re.DOTALL)
    return found.group(1) if found else ""


def dice_curve_png(history: Sequence[Mapping[str, Any]], structure_names: Sequence[str]) -> bytes:
    """Validation Dice per epoch: the mean (``val_dice``) and each structure (``val_dice_k``).

    Args:
        history: One dict per epoch with ``epoch``, ``val_dice`` and ``val_dice_1``..
            (``val_dice_k`` is structure ``structure_names[k - 1]``); a missing or ``None``
            value leaves a gap.
        structure_names: Structure names without background.

    Returns:
        The figure as PNG bytes.
    """
    fig = Figure(figsize=FIGSIZE_IN)
    ax = fig.subplots()

    def column(key: str) -> list[float]:
        return [math.nan if row.get(key) is None else float(row[key]) for row in history]

    epochs = column("epoch")
    ax.plot(epochs, column("val_dice"), marker=".", color="black", linewidth=2, label="mean")
    keys = sorted(
        {k for row in history for k in row if re.fullmatch(r"val_dice_\d+", k)},
        key=lambda k: int(k.rsplit("_", 1)[1]),
    )
    for key in keys:
        k = int(key.rsplit("_", 1)[1])
        name = structure_names[k - 1] if 0 < k <= len(structure_names) else f"class {k}"
        ax.plot(epochs, column(key), marker=".", linewidth=1, label=name)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Validation Dice")
    ax.set_title("Validation Dice")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png_bytes(fig)


def _case_dice(per_case: Sequence[Mapping[str, Any]], name: str) -> dict[str, float]:
    dice: dict[str, float] = {}
    for case in per_case:
        value = (case.get("metrics") or {}).get(name, {}).get("dice")
        if value is not None:
            dice[str(case.get("case_id"))] = float(value)
    return dice


def _typical(dice: Mapping[str, float], exclude: set[str], k: int) -> list[str]:
    """The ``k`` case IDs nearest the median Dice, nearest first, not in ``exclude``."""
    if not dice or k <= 0:
        return []
    ordered = sorted(dice.values())
    middle = len(ordered) // 2
    median = (ordered[middle] + ordered[~middle]) / 2.0
    candidates = [c for c in dice if c not in exclude]
    return sorted(candidates, key=lambda c: abs(dice[c] - median))[:k]


def cases_to_illustrate(
    summary: Mapping[str, Any], per_case: Sequence[Mapping[str, Any]], n_typical: int = 2
) -> dict[str, list[str]]:
    """Which cases the report shows per structure, i.e. which need overlays.

    Args:
        summary: ``summarise_segmentation``'s output.
        per_case: The per-case records it was made from (``case_record``'s output).
        n_typical: Typical cases (Dice nearest the median) per structure.

    Returns:
        ``{structure: [case_id, ...]}``: the worst cases, then the typical ones.
    """
    out: dict[str, list[str]] = {}
    for name in summary["class_names"]:
        worst = [str(row["case_id"]) for row in summary["worst_cases"].get(name, [])]
        out[name] = worst + _typical(_case_dice(per_case, name), set(worst), n_typical)
    return out


def _checked_summary(summary: Mapping[str, Any]) -> None:
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    if missing:
        raise ValueError(f"summary lacks {missing}: pass the dict summarise_segmentation returns")


def _metric_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in summary["class_names"]:
        entry = summary["per_class"][name]
        metrics = entry["metrics"]
        undefined = [
            f"{label} {metrics[key]['n_undefined']}"
            for key, label, _ in METRIC_COLUMNS
            if metrics[key]["n_undefined"]
        ]
        rows.append(
            {
                "name": name,
                "cells": [format_estimate(metrics[key]["mean"], d) for key, _, d in METRIC_COLUMNS],
                "n": summary["n_cases"],
                "n_both_empty": entry["n_both_empty"],
                "undefined": ", ".join(undefined) or "0",
            }
        )
    return rows


def _lesion_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in summary["class_names"]:
        lesions = summary["per_class"][name].get("lesions")
        if lesions is None:
            continue
        rows.append(
            {
                "name": name,
                "sensitivity": format_estimate(lesions["sensitivity"], 3),
                "fp_per_case": format_estimate(lesions["fp_per_case"], 2),
                **{key: lesions[key] for key in ("n_true", "tp", "fn", "fp")},
            }
        )
    return rows


class _Gallery:
    """Encodes each case's overlays once and shows them under the first structure only."""

    def __init__(self, overlays: Mapping[str, Sequence[Overlay]]) -> None:
        self.overlays = overlays
        self.shown: set[str] = set()

    def block(self, name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        figures: list[dict[str, Any]] = []
        shown_above: list[str] = []
        for row in rows:
            case_id = row["case_id"]
            items = self.overlays.get(case_id) or []
            if case_id in self.shown:
                if items:
                    shown_above.append(case_id)
                continue
            self.shown.add(case_id)
            figures += [
                {"png": png_bytes(image), "caption": f"{case_id}: {caption}"}
                for caption, image in items
            ]
        return {"name": name, "rows": rows, "figures": figures, "shown_above": shown_above}


def _context(
    summary: Mapping[str, Any],
    per_case: Sequence[Mapping[str, Any]],
    overlays: Mapping[str, Sequence[Overlay]],
    settings: Mapping[str, str],
    history: Sequence[Mapping[str, float]] | None,
    notes: Sequence[str] | None,
    n_typical: int,
) -> dict[str, Any]:
    _checked_summary(summary)
    names = list(summary["class_names"])
    gallery = _Gallery(overlays)
    worst = []
    for name in names:
        rows = [
            {"case_id": str(row["case_id"]), "dice": _dice_text(row["dice"])}
            for row in summary["worst_cases"].get(name, [])
        ]
        if rows:
            worst.append(gallery.block(name, rows))
    typical = []
    for name in names:
        dice = _case_dice(per_case, name)
        worst_ids = {str(row["case_id"]) for row in summary["worst_cases"].get(name, [])}
        with_overlays = {c: d for c, d in dice.items() if overlays.get(c)}
        chosen = _typical(with_overlays, worst_ids, n_typical)
        rows = [{"case_id": c, "dice": _dice_text(dice[c])} for c in chosen]
        if rows:
            typical.append(gallery.block(name, rows))
    case_rows = [
        {
            "case_id": str(case.get("case_id")),
            "cells": [
                _dice_text((case.get("metrics") or {}).get(name, {}).get("dice")) for name in names
            ],
        }
        for case in per_case
    ]
    coverage = round(100 * (1 - float(summary["alpha"])))
    ci_note = (
        f"{summary['n_cases']} cases of {summary['n_patients']} patients. {coverage}% "
        f"confidence intervals: {summary['ci_method']} ({summary['n_boot']} resamples)."
    )
    return {
        "title": settings.get("title", "Segmentation evaluation"),
        "generated_by": f"medsight {__version__}",
        "settings": [(str(k), str(v)) for k, v in settings.items()],
        "ci_note": ci_note,
        "metric_labels": [label for _, label, _ in METRIC_COLUMNS],
        "metric_rows": _metric_rows(summary),
        "lesion_rows": _lesion_rows(summary),
        "curve_png": dice_curve_png(history, names) if history else None,
        "worst": worst,
        "typical": typical,
        "structure_names": names,
        "case_rows": case_rows,
        "notes": [str(note) for note in notes or []],
        "disclaimer": DISCLAIMER,
    }


def _render(context: dict[str, Any], standalone: bool) -> str:
    template = _environment().get_template(TEMPLATE_NAME)
    return template.render(**context, standalone=standalone, css=_page_css())


def segmentation_section(
    summary: Mapping[str, Any],
    per_case: Sequence[Mapping[str, Any]],
    overlays: Mapping[str, Sequence[Overlay]],
    settings: Mapping[str, str],
    history: Sequence[Mapping[str, float]] | None = None,
    notes: Sequence[str] | None = None,
    n_typical: int = 2,
) -> str:
    """The report's content as an HTML fragment (a ``<section>``) to embed in another page.

    The fragment uses the classification report's CSS classes, so it looks right inside
    ``report.html.j2``; it carries no ``<html>``, ``<head>`` or CSS of its own. It is
    already escaped HTML: embed it with ``|safe`` (or wrap it in ``markupsafe.Markup``).

    Args: as ``render_segmentation_report``, without ``path``.

    Returns:
        The HTML fragment.

    Raises:
        ValueError: If ``summary`` is not ``summarise_segmentation``'s output.
        FileNotFoundError: If an overlay path does not exist.
    """
    context = _context(summary, per_case, overlays, settings, history, notes, n_typical)
    return _render(context, standalone=False)


def render_segmentation_report(
    path: Path,
    summary: Mapping[str, Any],
    per_case: Sequence[Mapping[str, Any]],
    overlays: Mapping[str, Sequence[Overlay]],
    settings: Mapping[str, str],
    history: Sequence[Mapping[str, float]] | None = None,
    notes: Sequence[str] | None = None,
    n_typical: int = 2,
) -> Path:
    """Write the segmentation evaluation as one self-contained HTML file, atomically.

    Args:
        path: Destination ``.html`` file; replaced if it exists, parent folders created.
        summary: ``summarise_segmentation``'s output.
        per_case: The per-case records it was made from (``case_record``'s output); gives
            the typical cases and the table of every case's Dice. Patient ids are never
            shown: a report travels further than the run folder.
        overlays: ``{case_id: [(caption, image), ...]}``, images as PIL images or PNG
            files (e.g. from ``comparison_overlay`` or ``write_prediction_overlays``). The
            worst cases (``summary["worst_cases"]``) are shown with theirs, and per
            structure up to ``n_typical`` other cases with overlays whose Dice lies nearest
            the median; ``cases_to_illustrate`` lists the cases worth rendering.
        settings: Facts shown as a table at the top (model, data, spacing, patch size,
            epochs, time, ...); ``"title"`` also titles the page.
        history: Training rows with ``epoch``, ``val_dice``, ``val_dice_1``.. (as
            ``segmenter_fit`` logs them) for a validation Dice curve; none if ``None``.
        notes: Sentences listed under "Notes" (plan, post-processing choices).
        n_typical: Typical cases per structure.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``summary`` is not ``summarise_segmentation``'s output.
        FileNotFoundError: If an overlay path does not exist.
    """
    page, _ = render_page_and_section(
        summary, per_case, overlays, settings, history, notes, n_typical
    )
    return write_text_atomic(Path(path), page)


def render_page_and_section(
    summary: Mapping[str, Any],
    per_case: Sequence[Mapping[str, Any]],
    overlays: Mapping[str, Sequence[Overlay]],
    settings: Mapping[str, str],
    history: Sequence[Mapping[str, float]] | None = None,
    notes: Sequence[str] | None = None,
    n_typical: int = 2,
) -> tuple[str, str]:
    """The standalone page and the embeddable fragment, from one context.

    The context (overlay PNGs, the Dice curve) is the costly part; building it once serves
    a caller that needs both, as the demo does.
    """
    context = _context(summary, per_case, overlays, settings, history, notes, n_typical)
    return _render(context, standalone=True), _render(context, standalone=False)
