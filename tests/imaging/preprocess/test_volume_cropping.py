import numpy as np
import pytest

from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.cropping import crop_to_foreground, pad_or_crop_volume

_DIRECTION = np.array(
    [[0.0, 0.0, 1.0], [np.cos(0.4), np.sin(0.4), 0.0], [-np.sin(0.4), np.cos(0.4), 0.0]]
)


def _volume() -> Volume:
    array = np.full((10, 20, 24), -1000.0, dtype=np.float32)
    array[3:7, 5:12, 8:20] = 40.0
    array[5, 9, 10] = 900.0
    return Volume(
        array=array,
        spacing_mm=(2.0, 0.75, 0.5),
        origin_lps=np.array([12.0, -40.0, 7.5]),
        direction=_DIRECTION,
    )


def _world_of_max(volume: Volume) -> np.ndarray:
    z, y, x = np.unravel_index(np.argmax(volume.array), volume.shape)
    return (volume.affine_lps() @ np.array([x, y, z, 1.0]))[:3]


@pytest.mark.parametrize(
    ("margin_mm", "expected"),
    [(0.0, ((3, 7), (5, 12), (8, 20))), (1.0, ((2, 8), (3, 14), (6, 22))), (50.0, None)],
)
def test_crop_to_foreground_box_and_geometry(margin_mm: float, expected) -> None:
    volume = _volume()
    out, bbox = crop_to_foreground(volume, -500.0, margin_mm)
    if expected is None:  # a margin beyond the array is clipped to it
        expected = ((0, 10), (0, 20), (0, 24))
    assert bbox == expected
    assert out.shape == tuple(hi - lo for lo, hi in bbox)
    np.testing.assert_allclose(_world_of_max(out), _world_of_max(volume), atol=1e-9)
    assert out.spacing_mm == volume.spacing_mm


def test_crop_without_foreground_keeps_everything() -> None:
    volume = _volume()
    out, bbox = crop_to_foreground(volume, 5000.0)
    assert bbox == ((0, 10), (0, 20), (0, 24))
    np.testing.assert_array_equal(out.array, volume.array)


@pytest.mark.parametrize("shape", [(4, 8, 30), (16, 25, 9), (10, 20, 24)])
@pytest.mark.parametrize("center", [None, (5.0, 9.0, 10.0)])
def test_pad_or_crop_keeps_world_coordinates(shape, center) -> None:
    volume = _volume()
    out = pad_or_crop_volume(volume, shape, fill=-1024.0, center=center)
    assert out.shape == shape
    np.testing.assert_allclose(_world_of_max(out), _world_of_max(volume), atol=1e-9)
    # every kept voxel keeps its world position: compare the whole overlap through world mm
    inverse = np.linalg.inv(volume.affine_lps())
    zyx = np.indices(shape).reshape(3, -1)
    world = out.affine_lps() @ np.vstack([zyx[::-1], np.ones(zyx.shape[1])])
    source = np.rint(inverse @ world)[:3][::-1].astype(int)
    inside = ((source >= 0) & (source < np.array(volume.shape)[:, None])).all(axis=0)
    np.testing.assert_array_equal(
        out.array.reshape(-1)[inside], volume.array[tuple(source[:, inside])]
    )
    assert (out.array.reshape(-1)[~inside] == -1024.0).all()
