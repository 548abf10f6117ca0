import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.orientation import orientation_code, reorient

# direction columns (x, y, z axes in LPS): axial DICOM, a sagittal acquisition, an oblique one
_OBLIQUE = np.array(
    [[np.cos(0.2), -np.sin(0.2), 0.0], [np.sin(0.2), np.cos(0.2), 0.0], [0.0, 0.0, 1.0]]
)
DIRECTIONS = {
    "axial": np.eye(3),
    "sagittal": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "oblique": _OBLIQUE,
}


def _volume(direction: np.ndarray) -> Volume:
    rng = np.random.default_rng(0)
    return Volume(
        array=rng.normal(size=(4, 5, 6)).astype(np.float32),
        spacing_mm=(2.5, 0.8, 0.7),
        origin_lps=np.array([-101.3, 47.9, 30.1]),
        direction=direction.copy(),
        meta={"kind": "nifti"},
    )


def _world(volume: Volume, zyx: tuple) -> np.ndarray:
    z, y, x = zyx
    return (volume.affine_lps() @ np.array([x, y, z, 1.0]))[:3]


def _worlds_by_value(volume: Volume) -> np.ndarray:
    zyx = np.indices(volume.shape).reshape(3, -1)
    xyz1 = np.vstack([zyx[::-1], np.ones(zyx.shape[1])])
    order = np.argsort(volume.array.ravel())
    return (volume.affine_lps() @ xyz1)[:3, order]


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
@pytest.mark.parametrize("target", ["RAS", "LPS", "PIL", "SRA"])
def test_reorient_keeps_world_coordinates_and_round_trips(name: str, target: str) -> None:
    volume = _volume(DIRECTIONS[name])
    marked = (1, 3, 4)
    volume.array[marked] = 100.0
    start_code = orientation_code(volume)

    out = reorient(volume, target)
    assert orientation_code(out) == target
    assert sorted(out.shape) == sorted(volume.shape)
    new_marked = np.unravel_index(np.argmax(out.array), out.shape)
    np.testing.assert_allclose(_world(out, new_marked), _world(volume, marked), atol=1e-9)
    # every voxel, not just the marked one (values are distinct, so they identify voxels)
    np.testing.assert_allclose(_worlds_by_value(out), _worlds_by_value(volume), atol=1e-9)

    back = reorient(out, start_code)
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.spacing_mm == volume.spacing_mm
    np.testing.assert_array_equal(back.direction, volume.direction)
    np.testing.assert_allclose(back.origin_lps, volume.origin_lps, rtol=0, atol=1e-9)
    assert back.meta == volume.meta and back.meta is not volume.meta


def test_lps_axial_to_ras_flips_x_and_y() -> None:
    volume = _volume(np.eye(3))
    assert orientation_code(volume) == "LPS"
    out = reorient(volume, "RAS")
    np.testing.assert_array_equal(out.array, volume.array[:, ::-1, ::-1])
    np.testing.assert_array_equal(out.direction, np.diag([-1.0, -1.0, 1.0]))
    ras = out.affine_ras()
    assert (np.diag(ras)[:3] > 0).all()
    # the new first voxel is the old last voxel in x and y
    np.testing.assert_allclose(out.origin_lps, _world(volume, (0, 4, 5)))


def test_reorient_handles_colour_axis() -> None:
    volume = _volume(DIRECTIONS["sagittal"])
    volume.array = np.stack([volume.array, -volume.array, 2 * volume.array], axis=-1)
    out = reorient(volume, "RAS")
    assert out.channels == 3
    np.testing.assert_array_equal(out.array[..., 1], -out.array[..., 0])


@pytest.mark.parametrize("bad", ["RAA", "RA", "XYZ", "RASL", ""])
def test_reorient_rejects_bad_codes(bad: str) -> None:
    with pytest.raises(InputError):
        reorient(_volume(np.eye(3)), bad)
