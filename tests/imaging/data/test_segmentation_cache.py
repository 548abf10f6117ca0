from pathlib import Path

import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.data.segmentation_cache import cache_pairs, label_indices, read_pair
from medsight.imaging.data.segmentation_manifest import SegmentationCase, read_segmentation_source
from medsight.imaging.io.nifti import write_nifti
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.contract import PreprocessContract

CONTRACT = PreprocessContract(
    spacing_mm=(3.0, 3.0, 3.0),
    normalisation="zscore",
    window_hu=(-1000.0, 200.0),
    mean=-300.0,
    std=400.0,
    shape=None,
    crop_to="body",
    mask_outside_lungs=False,
)
GIB = 2**30


def _first(manifest: Path) -> SegmentationCase:
    return read_segmentation_source(manifest).cases[1]


def test_pair_is_resampled_to_one_grid_with_labels_kept(toy_segmentation: Path) -> None:
    case = _first(toy_segmentation)
    image, labels = read_pair(case, [1, 2], CONTRACT, GIB)
    assert image.shape == labels.shape == (16, 24, 24)
    assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 1, 2}
    # the organ is dark: its normalised intensity is below the body's
    assert image[labels == 1].mean() < image[labels == 0].mean()


def test_label_values_become_channel_indices() -> None:
    out = label_indices(np.array([[[0, 3, 7]]], dtype=np.float32), [3, 7], "m.nii")
    assert out.tolist() == [[[0, 1, 2]]]
    with pytest.raises(InputError, match="value\\(s\\) 5 not declared"):
        label_indices(np.array([[[0, 5]]], dtype=np.float32), [3, 7], "m.nii")
    with pytest.raises(InputError, match="non-integer"):
        label_indices(np.array([[[0.5]]], dtype=np.float32), [1], "m.nii")


def _shifted_mask(case: SegmentationCase, tmp_path: Path, **change: object) -> SegmentationCase:
    mask = read_image(case.mask_path)
    moved = Volume(
        mask.array[: change.get("slices")],
        change.get("spacing", mask.spacing_mm),  # type: ignore[arg-type]
        mask.origin_lps + np.array(change.get("shift", (0.0, 0.0, 0.0))),
        mask.direction,
    )
    path = tmp_path / "mask.nii.gz"
    write_nifti(path, moved.array, moved.affine_ras())
    return SegmentationCase(case.case_id, case.patient_id, case.image_path, path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slices": 10}, "label map is \\(10, 48, 48\\) voxels"),
        ({"spacing": (3.0, 1.5, 2.0)}, "spacing"),
        ({"shift": (0.0, 0.0, 4.0)}, "origin is 4.00 mm away"),
    ],
)
def test_label_map_off_the_image_grid_is_refused(
    toy_segmentation: Path, tmp_path: Path, change: dict, message: str
) -> None:
    case = _shifted_mask(_first(toy_segmentation), tmp_path, **change)
    with pytest.raises(InputError, match=message):
        read_pair(case, [1, 2], CONTRACT, GIB)


def test_image_too_large_for_the_memory_allowed_is_refused_before_training(
    toy_segmentation: Path,
) -> None:
    with pytest.raises(InputError, match="voxels|memory|GiB"):
        read_pair(_first(toy_segmentation), [1, 2], CONTRACT, 100_000)


def test_cache_is_reused(toy_segmentation: Path, tmp_path: Path) -> None:
    cases = read_segmentation_source(toy_segmentation).cases[:3]
    images, labels, hits = cache_pairs(cases, [1, 2], CONTRACT, tmp_path, GIB)
    assert hits == 0 and len(images) == len(labels) == 3
    again = cache_pairs(cases, [1, 2], CONTRACT, tmp_path, GIB)
    assert again[2] == 3 and again[0].paths == images.paths
    assert images[0].dtype == np.float16 and labels[0].dtype == np.uint8
