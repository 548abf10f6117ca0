"""A heatmap on the model's grid lands on the matching anatomy of the input volume."""

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from medsight.imaging.explain.heatmap_geometry import ModelGrid, heatmap_to_input, model_grid
from medsight.imaging.io.nifti import write_nifti
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.contract import PreprocessContract, apply_contract
from medsight.imaging.preprocess.geometry import crop_or_pad, resample_to_spacing
from medsight.imaging.preprocess.intensity import window_hu
from medsight.imaging.synth.chest_ct import case_volume, plan_cohort

# An oblique, shifted volume whose spacing halves exactly into the contract's, with a block
# of "body" (0 HU) in air: input z 8..23, y 16..47, x 20..51.
INPUT_SHAPE = (32, 64, 64)
BODY = (slice(8, 24), slice(16, 48), slice(20, 52))
CONTRACT = PreprocessContract(spacing_mm=(4.0, 2.0, 2.0), shape=(8, 16, 16), crop_to="body")


@pytest.fixture(scope="module")
def block_volume() -> Volume:
    array = np.full(INPUT_SHAPE, -1000.0, dtype=np.float32)
    array[BODY] = 0.0
    direction = Rotation.from_euler("xyz", [20, -10, 35], degrees=True).as_matrix()
    return Volume(array, (2.0, 1.0, 1.0), np.array([12.0, -40.0, 75.0]), direction, "CT")


@pytest.fixture(scope="module")
def chest_volume() -> Volume:
    volume, _ = case_volume(plan_cohort(1, seed=0)[0])
    return volume


def test_grid_of_the_block(block_volume: Volume) -> None:
    grid = model_grid(block_volume, CONTRACT)
    # resampled, the body spans z 4..11, y 8..23, x 10..25: exactly the 8 x 16 x 16 box
    assert grid == ModelGrid(INPUT_SHAPE, (16, 32, 32), (4, 8, 10), (8, 16, 16))


def test_box_maps_back_to_the_same_place_in_the_world(block_volume: Volume, tmp_path: Path) -> None:
    grid = model_grid(block_volume, CONTRACT)
    heat = np.zeros(grid.crop_shape, dtype=np.float32)
    heat[2:4, 4:8, 10:14] = 1.0  # resampled z 6..7, y 12..15, x 20..23
    on_input = heatmap_to_input(heat, grid)
    assert on_input.shape == INPUT_SHAPE and on_input.dtype == np.float32
    assert on_input.min() >= 0.0 and on_input.max() <= 1.0

    # each resampled voxel covers two input voxels: the box is input z 12..15, y 24..31,
    # x 40..47; trilinear blurs its edge by one voxel, and nothing lands elsewhere
    assert np.all(on_input[13:15, 25:31, 41:47] > 0.99)
    outside = np.ones(INPUT_SHAPE, dtype=bool)
    outside[11:17, 23:33, 39:49] = False
    assert np.all(on_input[outside] == 0.0)

    # world position of the box centre, three ways: by hand on the input grid, through the
    # model grid's affine, and from the NIfTI file written with the input's affine
    expected = block_volume.affine_ras() @ np.array([43.5, 27.5, 13.5, 1.0])
    through_model = grid.affine_ras(block_volume.affine_ras()) @ np.array([11.5, 5.5, 2.5, 1.0])
    np.testing.assert_allclose(through_model, expected, atol=1e-9)

    path = write_nifti(tmp_path / "heat.nii.gz", on_input, block_volume.affine_ras())
    image: Any = nib.load(str(path))
    data = np.asarray(image.dataobj, dtype=np.float64)  # (i, j, k) = (x, y, z)
    ijk = np.argwhere(data > 0)
    centroid = (ijk * data[data > 0][:, None]).sum(axis=0) / data.sum()
    world = image.affine @ np.append(centroid, 1.0)
    np.testing.assert_allclose(world[:3], expected[:3], atol=0.05)


def test_grid_reproduces_apply_contract_crop(chest_volume: Volume) -> None:
    contract = PreprocessContract(mask_outside_lungs=False)
    grid = model_grid(chest_volume, contract)
    assert grid.crop_shape == contract.shape
    resampled = window_hu(
        resample_to_spacing(chest_volume.array, chest_volume.spacing_mm, contract.spacing_mm),
        contract.window_hu,
    )
    assert resampled.shape == grid.resampled_shape
    # the box taken by hand from grid.crop_start, padding with air (0 after the window)
    padded = np.pad(resampled, [(n, n) for n in grid.crop_shape])
    box = tuple(
        slice(start + n, start + 2 * n)
        for start, n in zip(grid.crop_start, grid.crop_shape, strict=True)
    )
    np.testing.assert_array_equal(apply_contract(chest_volume, contract), padded[box])


def test_round_trip_keeps_a_smooth_map(chest_volume: Volume) -> None:
    contract = PreprocessContract()
    grid = model_grid(chest_volume, contract)
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in grid.crop_shape], indexing="ij")
    heat = np.exp(
        -(((zz - 20) / 12.0) ** 2 + ((yy - 36) / 20.0) ** 2 + ((xx - 40) / 25.0) ** 2)
    ).astype(np.float32)
    on_input = heatmap_to_input(heat, grid)
    assert on_input.shape == chest_volume.shape
    # forward again the way apply_contract does: resample, then cut the same box
    (z0, y0, x0), (nz, ny, nx) = grid.crop_start, grid.crop_shape
    back = crop_or_pad(
        resample_to_spacing(on_input, chest_volume.spacing_mm, contract.spacing_mm),
        grid.crop_shape,
        (z0 + (nz - 1) / 2, y0 + (ny - 1) / 2, x0 + (nx - 1) / 2),
    )
    inside = tuple(slice(2, n - 2) for n in grid.crop_shape)
    assert float(np.abs(back[inside] - heat[inside]).max()) < 0.02


def test_contract_without_shape_and_padding(block_volume: Volume) -> None:
    keep = model_grid(block_volume, CONTRACT.model_copy(update={"shape": None}))
    assert keep.crop_start == (0, 0, 0) and keep.crop_shape == keep.resampled_shape
    # a box larger than the volume: the padding is dropped on the way back
    big = model_grid(block_volume, CONTRACT.model_copy(update={"shape": (20, 40, 40)}))
    assert big.crop_start == (-2, -4, -2)
    on_input = heatmap_to_input(np.ones(big.crop_shape, dtype=np.float32), big)
    assert on_input.shape == INPUT_SHAPE and np.all(on_input == 1.0)
    with pytest.raises(ValueError, match="differs from the model grid"):
        heatmap_to_input(np.ones((8, 16, 15), dtype=np.float32), keep)
