import base64
import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medsight.evaluate.classification.classification_metrics import classification_metrics
from medsight.evaluate.report.figures import confusion_figure, roc_figure, training_curves_figure
from medsight.evaluate.report.html_report import write_report
from medsight.imaging.explain.overlay import overlay_png

NAMES = ["normal", "benign", "malignant"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def shared_context() -> dict:
    y = np.array([0, 1, 2, 0, 1, 2, 1])
    probs = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.2, 0.6, 0.2],
            [0.1, 0.3, 0.6],
            [0.4, 0.5, 0.1],
            [0.3, 0.4, 0.3],
            [0.2, 0.2, 0.6],
            [0.5, 0.3, 0.2],
        ]
    )
    metrics = classification_metrics(y, probs, NAMES)
    history: list[dict[str, Any]] = [
        {"epoch": 1, "train_loss": 1.1, "val_loss": 1.0, "val_auc": 0.6},
        {"epoch": 2, "train_loss": 0.8, "val_loss": 0.9, "val_auc": None},
    ]
    image = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    heat = np.zeros((32, 32), np.float32)
    heat[10:20, 10:20] = 1.0
    return {
        "title": "Lung CT classifier",
        "summary": {"dataset": "synthetic chest CT", "cases (train/val/test)": "60/20/7"},
        "metrics": metrics,
        "figures": {
            "roc": roc_figure(y, probs, NAMES),
            "confusion": confusion_figure(metrics["confusion_matrix"], NAMES),
            "curves": training_curves_figure(history),
        },
        "heatmaps": [
            {"png": overlay_png(image, heat, "case-1"), "caption": "case-1 ok", "group": "correct"},
            {
                "png": overlay_png(image, heat, "case-2"),
                "caption": "<script>alert(1)</script> wrong one",
                "group": "wrong",
            },
        ],
        "model": {"name": "lungct-cnn", "parameters": 12345, "versions": {"torch": "2.13"}},
        "generated_by": "medsight 0.1.0",
    }


@pytest.fixture
def context(shared_context: dict) -> dict:
    """A copy each test may modify; the PNGs are rendered once per module."""
    return {**shared_context, "metrics": copy.deepcopy(shared_context["metrics"])}


def test_report_renders_self_contained_with_inlined_images(tmp_path: Path, context: dict) -> None:
    path = write_report(tmp_path / "out" / "report.html", context)
    html = path.read_text(encoding="utf-8")

    assert path == tmp_path / "out" / "report.html"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp file left
    assert "Lung CT classifier" in html and "synthetic chest CT" in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 5  # roc, confusion, curves and two heatmaps
    assert all(base64.b64decode(i).startswith(PNG_SIGNATURE) for i in images)
    assert not re.search(r'(src|href)\s*=\s*["\']?https?://', html)
    assert "<script" not in html.lower()
    assert "Correct predictions (1)" in html and "Wrong predictions (1)" in html
    assert f"{context['metrics']['accuracy']:.3f}" in html
    assert "research" in html.lower() and "synthetic" in html.lower()


def test_caption_is_escaped(tmp_path: Path, context: dict) -> None:
    html = write_report(tmp_path / "report.html", context).read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; wrong one" in html


def test_undefined_metric_shown_as_na(tmp_path: Path, context: dict) -> None:
    context["metrics"]["macro_auc"] = None
    html = write_report(tmp_path / "report.html", context).read_text(encoding="utf-8")
    assert "n/a" in html


def test_missing_required_key_raises(tmp_path: Path, context: dict) -> None:
    del context["metrics"]
    with pytest.raises(ValueError, match="metrics"):
        write_report(tmp_path / "report.html", context)
    assert not (tmp_path / "report.html").exists()


def test_figures_are_png(context: dict) -> None:
    for png in context["figures"].values():
        assert png.startswith(PNG_SIGNATURE)
    assert training_curves_figure([]).startswith(PNG_SIGNATURE)
