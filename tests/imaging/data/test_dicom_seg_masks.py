"""DICOM SEG files as the masks of a segmentation dataset (how annotations leave PACS).

The SEGs are written by medsight's own writer from the toy dataset's NIfTI label maps, on
its DICOM CT series; one numbers its segments the other way round (as a viewer numbers
them in the order they were drawn), so matching by name is exercised.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medsight.errors import InputError
from medsight.imaging.data.segmentation_cache import read_label_map
from medsight.imaging.data.segmentation_manifest import (
    SegmentationCase,
    parse_labels,
    read_segmentation_source,
)
from medsight.imaging.io.ct_writer import deterministic_uid
from medsight.imaging.io.dicom_seg import describe_segment, write_dicom_seg
from medsight.imaging.io.read_image import read_image

#: six cases, split by hand so that a tiny run has train, val and test
SPLITS = ["train", "train", "train", "val", "val", "test"]
#: the case whose SEG numbers nodule 1 and organ 2
SWAPPED = 4


def _write_seg(mask: Path, series: Path, out: Path, swapped: bool = False) -> Path:
    labels = read_image(mask).array.astype(np.int64)
    names = ["organ", "nodule"]
    if swapped:
        labels = np.choose(labels, [0, 2, 1])
        names.reverse()
    segments = [describe_segment(n, name) for n, name in enumerate(names, start=1)]
    return write_dicom_seg(
        labels, series, segments, out, algorithm_name="annotator", algorithm_version="1"
    )


@pytest.fixture(scope="module")
def seg_dataset(toy_segmentation_dicom: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of six toy CT series whose masks are DICOM SEGs; no labels.json."""
    toy = toy_segmentation_dicom.parent
    root = tmp_path_factory.mktemp("segmasks")
    (root / "seg").mkdir()
    rows = []
    for i, split in enumerate(SPLITS):
        name = f"toy_{i:03d}"
        _write_seg(
            toy / "masks" / f"{name}.nii.gz",
            toy / "series" / name,
            root / "seg" / f"{name}.dcm",
            swapped=i == SWAPPED,
        )
        rows.append([str(toy / "series" / name), f"seg/{name}.dcm", f"P{i:03d}", split])
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "mask", "patient_id", "split"])
        writer.writerows(rows)
    return root / "manifest.csv"


def test_segment_labels_name_the_structures_and_are_matched_by_name(seg_dataset: Path) -> None:
    source = read_segmentation_source(seg_dataset)
    assert source.labels == {"organ": 1, "nodule": 2}
    assert source.cases[0].segment_values == ((1, 1), (2, 2))
    assert source.cases[SWAPPED].segment_values == ((1, 2), (2, 1))


def test_seg_mask_becomes_the_label_map_it_was_written_from(
    seg_dataset: Path, toy_segmentation_dicom: Path
) -> None:
    masks = toy_segmentation_dicom.parent / "masks"
    for case in read_segmentation_source(seg_dataset).cases:
        labels = read_label_map(case, read_image(case.image_path))
        expected = read_image(masks / f"{case.image_path.name}.nii.gz").array
        np.testing.assert_array_equal(labels, expected)


def test_seg_is_placed_on_a_nifti_image_of_the_same_grid_by_position(
    seg_dataset: Path, toy_segmentation: Path
) -> None:
    image = toy_segmentation.parent / "images" / "toy_002.nii.gz"
    case = SegmentationCase("c", "p", image, seg_dataset.parent / "seg" / "toy_002.dcm")
    labels = read_label_map(case, read_image(image))
    expected = read_image(toy_segmentation.parent / "masks" / "toy_002.nii.gz").array
    np.testing.assert_array_equal(labels, expected)


def _moved_copy(series: Path, out: Path, shift_mm: float) -> Path:
    """The series re-exported with new UIDs, its slices moved along z by ``shift_mm``."""
    out.mkdir()
    for k, path in enumerate(sorted(series.iterdir())):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = deterministic_uid("moved", "series")
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = deterministic_uid("moved", k)
        ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + shift_mm
        ds.save_as(out / path.name)
    return out


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("toy_001", r"another frame of reference \(it references series [0-9.]+, the image is"),
        ("moved", r"frame \d+ references no image of it and lies on none of its slices"),
    ],
)
def test_seg_drawn_on_another_series_is_refused_in_one_line(
    seg_dataset: Path, toy_segmentation_dicom: Path, tmp_path: Path, image: str, message: str
) -> None:
    toy = toy_segmentation_dicom.parent / "series"
    series = (
        _moved_copy(toy / "toy_000", tmp_path / "moved", 1.5) if image == "moved" else toy / image
    )
    seg = seg_dataset.parent / "seg" / "toy_000.dcm"
    case = SegmentationCase("c", "p", series, seg, segment_values=((1, 1), (2, 2)))
    with pytest.raises(InputError, match=message) as err:
        read_label_map(case, read_image(series))
    assert str(err.value).startswith(f"{seg}: SEG does not fit {series.name}")
    assert "\n" not in str(err.value)


def test_seg_with_a_segment_no_label_declares_is_refused(seg_dataset: Path) -> None:
    with pytest.raises(InputError, match=r"segment\(s\) 2 'nodule' match no label") as err:
        read_segmentation_source(seg_dataset, parse_labels("liver=1"))
    assert "toy_000.dcm" in str(err.value)
    # declared by value, with other names: matched by number
    source = read_segmentation_source(seg_dataset, parse_labels("a=1,b=2"))
    assert source.cases[SWAPPED].segment_values == ((1, 1), (2, 2))


def test_segs_numbering_structures_differently_need_declared_labels(
    seg_dataset: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.csv"
    rows = list(csv.reader(seg_dataset.open()))
    for row in rows[1:]:
        row[1] = str(seg_dataset.parent / row[1])
    rows[2][1] = str(shutil.copy(rows[2][1], tmp_path / "renamed.dcm"))
    ds = pydicom.dcmread(rows[2][1])
    ds.SegmentSequence[0].SegmentLabel = "liver"
    ds.save_as(rows[2][1])
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(
        InputError, match=r"segment 1 is 'liver' here but 'organ' in toy_000.dcm"
    ) as err:
        read_segmentation_source(manifest)
    assert str(err.value).endswith("--labels organ=1,nodule=2,liver=3")
    assert read_segmentation_source(manifest, parse_labels("organ=1,nodule=2,liver=3")).cases[
        1
    ].segment_values == ((1, 3), (2, 2))


def _medsight(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsight", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_train_segment_on_dicom_seg_masks(seg_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    planned = _medsight("plan", str(seg_dataset), "--task", "segment", "-o", str(run / "plan.json"))
    assert planned.returncode == 0, planned.stderr
    plan = json.loads((run / "plan.json").read_text())
    plan["model_kwargs"].update({"depth": 3, "base_filters": 4})
    (run / "plan.json").write_text(json.dumps(plan))
    args = ["--task", "segment", "-o", str(run), "--epochs", "1", "--iterations", "2"]
    result = _medsight("train", str(seg_dataset), *args)
    assert result.returncode == 0, result.stderr
    contract = json.loads((run / "model.json").read_text())
    assert contract["class_names"] == ["background", "organ", "nodule"]
    assert contract["label_values"] == [1, 2]
    assert json.loads((run / "dataset.json").read_text())["labels"] == {"organ": 1, "nodule": 2}
