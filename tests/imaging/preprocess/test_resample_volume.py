import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.resampling import resample_volume

_ROT = np.array(
    [[np.cos(0.3), 0.0, np.sin(0.3)], [0.0, 1.0, 0.0], [-np.sin(0.3), 0.0, np.cos(0.3)]]
)


def _world_centroid(volume: Volume, weights: np.ndarray) -> np.ndarray:
    zyx = np.array(np.nonzero(weights > 0), dtype=np.float64)
    w = weights[weights > 0].astype(np.float64)
    xyz1 = np.vstack([zyx[::-1], np.ones(zyx.shape[1])])
    return (volume.affine_lps() @ xyz1 @ w / w.sum())[:3]


def _phantom(direction: np.ndarray) -> tuple[Volume, Volume]:
    shape = (12, 30, 28)
    mask = np.zeros(shape, dtype=np.uint8)
    mask[4:7, 10:16, 8:13] = 2
    mask[8:10, 20:25, 15:22] = 5
    mask[2:4, 3:6, 20:26] = 1
    image = np.where(mask > 0, 100.0 * mask, 0.0).astype(np.float32)
    geometry = {
        "spacing_mm": (3.0, 0.9, 1.1),
        "origin_lps": np.array([-20.0, 35.5, 102.0]),
        "direction": direction,
    }
    return Volume(array=image, **geometry), Volume(array=mask, **geometry)


@pytest.mark.parametrize("direction", [np.eye(3), _ROT], ids=["axial", "oblique"])
@pytest.mark.parametrize("target", [(1.5, 0.6, 0.7), (4.0, 1.3, 1.7)], ids=["finer", "coarser"])
def test_mask_resampling_keeps_labels_and_world_position(direction, target) -> None:
    _, mask = _phantom(direction)
    out = resample_volume(mask, target, kind="mask")
    assert out.spacing_mm == target and out.array.dtype == np.uint8
    assert set(np.unique(out.array)) == set(np.unique(mask.array))
    for label in (1, 2, 5):
        before = _world_centroid(mask, (mask.array == label).astype(float))
        after = _world_centroid(out, (out.array == label).astype(float))
        # within half a voxel of the coarser grid along every axis
        half = 0.5 * np.maximum(mask.spacing_mm, target)[::-1]
        offset_voxels = np.abs(np.linalg.solve(direction, after - before))
        assert (offset_voxels <= half + 1e-9).all(), (label, offset_voxels, half)


@pytest.mark.parametrize("order", [1, 3])
def test_image_resampling_keeps_extent_and_intensity_centroid(order: int) -> None:
    image, _ = _phantom(_ROT)
    target = (1.5, 0.5, 0.55)
    out = resample_volume(image, target, order=order)
    assert out.array.dtype == np.float32
    extent_before = np.array(image.shape) * image.spacing_mm
    extent_after = np.array(out.shape) * np.array(target)
    assert (np.abs(extent_after - extent_before) <= np.array(target) / 2 + 1e-9).all()
    # the first voxel's outer corner stays put
    corner = image.affine_lps() @ np.array([-0.5, -0.5, -0.5, 1.0])
    np.testing.assert_allclose(out.affine_lps() @ np.array([-0.5, -0.5, -0.5, 1.0]), corner)
    before = _world_centroid(image, image.array)
    after = _world_centroid(out, np.clip(out.array, 0, None))
    assert np.linalg.norm(after - before) < 0.25
    if order == 1:  # linear interpolation cannot overshoot
        assert out.array.min() >= 0 and out.array.max() <= image.array.max()


def test_same_spacing_is_identity() -> None:
    image, mask = _phantom(np.eye(3))
    out = resample_volume(image, image.spacing_mm)
    np.testing.assert_array_equal(out.array, image.array)
    np.testing.assert_array_equal(out.origin_lps, image.origin_lps)


def test_bad_spacing_is_an_input_error() -> None:
    image, _ = _phantom(np.eye(3))
    with pytest.raises(InputError):
        resample_volume(image, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError):
        resample_volume(image, (1.0, 1.0, 1.0), order=2)
