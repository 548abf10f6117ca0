import base64
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from medsight.evaluate.report.segmentation_report import (
    cases_to_illustrate,
    format_estimate,
    render_segmentation_report,
    segmentation_section,
)
from medsight.evaluate.segmentation.segmentation_summary import case_record, summarise_segmentation

LABELS = {1: "lung", 2: "nodule"}
HOSTILE = "<script>alert(1)</script>"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SHAPE = (6, 16, 16)


def case_maps(shift: int, nodule_found: bool) -> tuple[np.ndarray, np.ndarray]:
    """Reference and prediction: the lung box is predicted ``shift`` voxels off along x,
    the nodule found or missed."""
    truth = np.zeros(SHAPE, np.uint8)
    truth[1:5, 3:13, 2:12] = 1
    truth[2:4, 5:8, 4:7] = 2
    pred = np.zeros(SHAPE, np.uint8)
    pred[1:5, 3:13, 2 + shift : 12 + shift] = 1
    if nodule_found:
        pred[2:4, 5:8, 4:7] = 2
    return truth, pred


@pytest.fixture(scope="module")
def evaluation() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cases = [
        ("case-a", "P1", 0, True),
        ("case-b", "P1", 1, True),
        (HOSTILE, "P2", 4, False),
        ("case-d", "P3", 2, True),
        ("case-e", "P3", 1, True),
    ]
    per_case, patients = [], []
    for case_id, patient, shift, found in cases:
        truth, pred = case_maps(shift, found)
        per_case.append(
            case_record(case_id, pred, truth, (2.0, 1.0, 1.0), LABELS, lesion_classes=["nodule"])
        )
        patients.append(patient)
    summary = summarise_segmentation(per_case, patients, seed=0, n_boot=200, k_worst=2)
    return summary, per_case


def overlay_image(colour: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (24, 16), colour)


@pytest.fixture
def overlays(tmp_path: Path) -> dict[str, list[tuple[str, Image.Image | Path]]]:
    saved = tmp_path / "saved.png"
    overlay_image((0, 0, 255)).save(saved)
    return {
        HOSTILE: [("lung, slice 3", overlay_image((255, 0, 0)))],
        "case-d": [("lung, slice 2", saved)],
        "case-b": [("nodule", overlay_image((0, 255, 0)))],
    }


def inlined_pngs(html: str) -> list[bytes]:
    found = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    return [base64.b64decode(item) for item in found]


def test_format_estimate() -> None:
    ci = {"point": 0.91234, "low": 0.881, "high": 0.9344, "n_boot_valid": 10}
    assert format_estimate(ci) == "0.912 (0.881\u20130.934)"
    assert format_estimate({**ci, "low": None}, digits=1) == "0.9 (n/a)"
    assert format_estimate({"point": None, "low": None, "high": None}) == "n/a"
    assert format_estimate(None) == "n/a"


def test_report_shows_metrics_cases_and_overlays(
    tmp_path: Path, evaluation: tuple[dict[str, Any], list[dict[str, Any]]], overlays: dict
) -> None:
    summary, per_case = evaluation
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_dice": 0.4, "val_dice_1": 0.6, "val_dice_2": 0.2},
        {"epoch": 2, "train_loss": 0.7, "val_dice": 0.6, "val_dice_1": 0.8, "val_dice_2": 0.4},
    ]
    path = render_segmentation_report(
        tmp_path / "out" / "segmentation.html",
        summary,
        per_case,
        overlays,
        {"title": "Lung segmentation", "model": "unet-3d", "patch": "64 x 96 x 96"},
        history=history,
        notes=["kept the largest lung component"],
    )
    html = path.read_text(encoding="utf-8")

    assert [p.name for p in path.parent.iterdir()] == ["segmentation.html"]  # no temp file
    assert html.startswith("<!DOCTYPE html>") and "<title>Lung segmentation</title>" in html
    assert "--accent" in html  # the classification report's CSS
    assert "unet-3d" in html and "64 x 96 x 96" in html
    assert "<th>lung</th>" in html and "<th>nodule</th>" in html
    dice = summary["per_class"]["lung"]["metrics"]["dice"]["mean"]
    assert re.search(r"0\.\d{3} \(0\.\d{3}\u20130\.\d{3}\)", html)
    assert format_estimate(dice) in html
    assert "Lesion detection" in html and "kept the largest lung component" in html
    assert "not a medical device" in html and "diagnosis" in html

    for name in ("lung", "nodule"):
        for row in summary["worst_cases"][name]:
            assert str(row["case_id"]).replace("<", "&lt;").replace(">", "&gt;") in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r'(src|href)\s*=\s*["\']?https?://', html)

    images = inlined_pngs(html)
    assert all(image.startswith(PNG_SIGNATURE) for image in images)
    # The Dice curve and the three overlays, each overlay once although its case is shown
    # for both structures.
    assert len(images) == 4


def test_worst_cases_lead_the_illustrated_cases(
    evaluation: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    summary, per_case = evaluation
    chosen = cases_to_illustrate(summary, per_case, n_typical=1)
    assert chosen["nodule"][0] == HOSTILE  # the missed nodule scores Dice 0
    assert len(chosen["lung"]) == len(set(chosen["lung"])) == 3


def test_section_is_a_fragment_with_the_same_content(
    evaluation: tuple[dict[str, Any], list[dict[str, Any]]], overlays: dict
) -> None:
    summary, per_case = evaluation
    section = segmentation_section(summary, per_case, overlays, {"model": "unet-3d"})

    assert "<html" not in section.lower() and "<style" not in section.lower()
    assert section.strip().startswith("<section") and section.strip().endswith("</section>")
    assert "<th>lung</th>" in section and "unet-3d" in section
    assert "&lt;script&gt;" in section and "<script" not in section.lower()
    assert len(inlined_pngs(section)) == 3  # no history, no curve


def test_report_rejects_a_summary_of_another_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="summarise_segmentation"):
        render_segmentation_report(tmp_path / "r.html", {"per_class": {}}, [], {}, {})
    assert not (tmp_path / "r.html").exists()
