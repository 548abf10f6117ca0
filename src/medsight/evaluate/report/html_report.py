"""A self-contained HTML evaluation report: one file, no network, no JavaScript.

Images are inlined as ``data:image/png;base64`` URIs and the CSS is in the page, so the
report can be mailed or archived as it is. The template is ``templates/report.html.j2``,
rendered with autoescaping on: every string in the context (captions, class names, model
facts) is shown as text, never interpreted as HTML.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from medsight.runs.atomic import write_text_atomic

TEMPLATE_NAME = "report.html.j2"
REQUIRED_KEYS = ("title", "metrics")


def png_data_uri(png: bytes) -> str:
    """Encode PNG bytes as a ``data:`` URI for an ``<img src=...>`` (a template filter).

    Args:
        png: The PNG file's bytes.

    Returns:
        ``"data:image/png;base64,..."``.

    Raises:
        TypeError: If ``png`` is not bytes (e.g. a path was passed instead of the image).
    """
    if not isinstance(png, bytes | bytearray | memoryview):
        raise TypeError(f"expected PNG bytes, got {type(png).__name__}")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _format_number(value: Any) -> str:
    """Render a metric: ``None`` (undefined) as ``n/a``, floats with three decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _format_ci(value: Any) -> str:
    """Render a ``{"point", "low", "high"}`` interval as ``(low-high)``, or ``n/a``."""
    if not isinstance(value, Mapping) or value.get("low") is None or value.get("high") is None:
        return "(n/a)"
    return f"({value['low']:.3f}-{value['high']:.3f})"


def _format_cell(value: Any) -> str:
    """Render a summary/model value: floats to 4 significant digits, the rest as text."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("medsight.evaluate.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["png_data_uri"] = png_data_uri
    environment.filters["num"] = _format_number
    environment.filters["cell"] = _format_cell
    environment.filters["ci"] = _format_ci
    return environment


def render_report(context: Mapping[str, Any]) -> str:
    """Render the report to an HTML string (see ``write_report`` for the context keys).

    Raises:
        ValueError: If a required key (``title``, ``metrics``) is missing.
    """
    missing = [key for key in REQUIRED_KEYS if key not in context]
    if missing:
        raise ValueError(f"report context lacks required keys: {missing}")
    full = {
        "summary": {},
        "figures": {},
        "heatmaps": [],
        "model": {},
        "data_summary": [],
        "evaluation": None,
        "model_card": None,
        "extra_sections": [],
        "generated_by": "medsight",
        **context,
    }
    return _environment().get_template(TEMPLATE_NAME).render(**full)


def write_report(path: Path, context: dict[str, Any]) -> Path:
    """Render the evaluation report and write it atomically to ``path``.

    The HTML is written to a temporary file beside ``path`` and renamed onto it, so a
    reader never sees a half-written report. Parent folders are created.

    Args:
        path: Destination ``.html`` file; replaced if it exists.
        context: What the report shows:

            * ``title`` (str, required): page title and header.
            * ``metrics`` (dict, required): the dict returned by ``classification_metrics``
              (accuracy, macro AUC, per-class table, confusion matrix).
            * ``summary`` (dict[str, str | int | float]): rows of the summary table, e.g.
              dataset, cases per split, model, epochs, training time.
            * ``figures`` (dict[str, bytes]): PNG bytes by name: ``roc``, ``pr``,
              ``confusion``, ``reliability``, ``curves``; a missing figure is left out.
            * ``heatmaps`` (list[dict]): Grad-CAM gallery items ``{"png": bytes,
              "caption": str, "group": "correct" | "wrong" | "abstained"}``.
            * ``data_summary`` (list[dict]): rows of the data table (split, cases,
              patients, cases per class).
            * ``evaluation`` (dict): `evaluate_classifier`'s output: CIs, operating point,
              calibration, subgroups, conformal sets.
            * ``model_card`` (dict): `build_model_card`'s output.
            * ``model`` (dict[str, str | int | float | dict]): model facts, e.g. name,
              parameters, seed, versions (a nested dict is shown as a list).
            * ``generated_by`` (str): the tool and version that made the report.

            Keys other than ``title`` and ``metrics`` default to empty.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``title`` or ``metrics`` is missing from ``context``.
        TypeError: If an image is not PNG bytes.
    """
    return write_text_atomic(path, render_report(context))


@functools.cache
def page_css() -> str:
    """The report's CSS (from ``report.html.j2``), for other pages that should look alike."""
    environment = _environment()
    assert environment.loader is not None
    source, _, _ = environment.loader.get_source(environment, TEMPLATE_NAME)
    found = re.search(r"<style>(.*?)</style>", source, flags=re.DOTALL)
    return found.group(1) if found else ""


def render_page(template_name: str, context: Mapping[str, Any]) -> str:
    """Render another page template of ``templates/`` with the report's filters and CSS.

    The template gets ``context`` plus ``css`` (the report's style sheet), with the same
    environment as the report: autoescape on, undefined names an error, and the filters
    ``png_data_uri``, ``num``, ``cell`` and ``ci``.

    Raises:
        jinja2.TemplateNotFound: If there is no such template.
    """
    return _environment().get_template(template_name).render(**context, css=page_css())
