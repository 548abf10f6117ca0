from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medsight.imaging.explain.segmentation_overlay import (
    FILL_ALPHA,
    LEGEND_ROW_PX,
    PRED_COLOUR,
    STRUCTURE_COLOURS,
    TRUTH_COLOUR,
    comparison_overlay,
    overlay_slice,
    slice_of_interest,
    structure_colour,
    write_prediction_overlays,
)
from medsight.imaging.io.volume import Volume

RED = (255, 0, 0)


def ramp_slice(ny: int = 10, nx: int = 12) -> np.ndarray:
    """HU from -1000 to 400 along x, so every column has its own grey."""
    return np.tile(np.linspace(-1000.0, 400.0, nx, dtype=np.float32), (ny, 1))


def square(shape: tuple[int, int], top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_palette_is_distinct_and_cycles() -> None:
    colours = list(STRUCTURE_COLOURS.values())
    assert len(set(colours)) == len(colours) >= 6
    assert all(len(set(c)) > 1 for c in colours)  # no grey: it would vanish on CT
    assert structure_colour(len(colours) + 1) == structure_colour(1)
    with pytest.raises(ValueError, match="background"):
        structure_colour(0)


@pytest.mark.parametrize(("aspect", "scale", "size"), [(1.0, 1, (12, 10)), (2.5, 2, (24, 50))])
def test_overlay_size_follows_aspect_and_scale(
    aspect: float, scale: int, size: tuple[int, int]
) -> None:
    image = overlay_slice(ramp_slice(), [], aspect=aspect, scale=scale)
    assert image.mode == "RGB"
    assert image.size == size  # (width, height)


def test_fill_colours_the_mask_and_leaves_the_rest_grey() -> None:
    mask = square((10, 12), 2, 3, 6)
    pixels = np.asarray(overlay_slice(ramp_slice(), [(mask, RED, "fill")], scale=2)).astype(int)
    big = np.kron(mask, np.ones((2, 2), bool))

    outside = pixels[~big]
    assert (outside[:, 0] == outside[:, 1]).all() and (outside[:, 1] == outside[:, 2]).all()
    # The outline (first row of the square, 2x upsampled) is the pure colour...
    assert tuple(pixels[4, 8]) == RED
    # ...and the interior a blend of its grey with the colour.
    grey = pixels[0, 12, 0]  # same column, outside the mask
    expected = np.round((1 - FILL_ALPHA) * grey + FILL_ALPHA * np.array(RED))
    assert tuple(pixels[8, 12]) == tuple(expected)


def test_outline_only_keeps_the_interior_grey() -> None:
    mask = square((10, 12), 2, 3, 6)
    plain = np.asarray(overlay_slice(ramp_slice(), [], scale=2))
    drawn = np.asarray(overlay_slice(ramp_slice(), [(mask, RED, "outline")], scale=2))

    assert tuple(drawn[4, 8]) == RED  # edge
    np.testing.assert_array_equal(drawn[6:14, 8:16], plain[6:14, 8:16])  # interior untouched
    assert (drawn != plain).any(axis=2).sum() == (6 * 2) ** 2 - (6 * 2 - 2) ** 2


def test_overlay_window_maps_hu_to_grey() -> None:
    image = np.array([[-2000.0, -1000.0, 400.0, 3000.0]], np.float32)
    grey = np.asarray(overlay_slice(image, [], window_hu=(-1000.0, 400.0), scale=1))[0, :, 0]
    assert grey.tolist() == [0, 0, 255, 255]


def test_overlay_rejects_bad_layers() -> None:
    with pytest.raises(ValueError, match="style"):
        overlay_slice(ramp_slice(), [(np.zeros((10, 12), bool), RED, "hatched")])
    with pytest.raises(ValueError, match="shape"):
        overlay_slice(ramp_slice(), [(np.zeros((4, 4), bool), RED, "fill")])


def test_slice_of_interest_picks_the_largest_slice_or_the_middle() -> None:
    mask = np.zeros((7, 8, 8), bool)
    mask[2, :2, :2] = True
    mask[5, :4, :4] = True
    assert slice_of_interest(mask) == 5
    assert slice_of_interest(np.zeros((7, 8, 8), bool)) == 3


@pytest.fixture
def ct() -> tuple[Volume, np.ndarray]:
    """A 9-slice volume, 3 mm slices, 0.5 x 1 mm pixels, and its label map: 'lung' (3)
    largest on z=4, 'nodule' (7) on z=6."""
    array = np.full((9, 16, 20), -800.0, np.float32)
    labels = np.zeros((9, 16, 20), np.uint16)
    for z, half in [(2, 2), (3, 3), (4, 5), (5, 3)]:
        labels[z, 8 - half : 8 + half, 10 - half : 10 + half] = 3
    labels[6, 2:5, 2:5] = 7
    return Volume(array=array, spacing_mm=(3.0, 0.5, 1.0)), labels


def test_write_prediction_overlays_writes_one_png_per_structure_and_component(
    tmp_path: Path, ct: tuple[Volume, np.ndarray]
) -> None:
    ct_volume, labels = ct
    components = [
        {"label": "nodule", "centroid_voxel": [6.0, 3.0, 3.0]},  # same slice as the nodule
        {"label": "lung", "centroid_voxel": [2.4, 8.0, 10.0]},
    ]
    paths = write_prediction_overlays(
        ct_volume, labels, ["background", "lung", "nodule"], [3, 7], tmp_path / "png", components
    )

    assert [p.name for p in paths] == [
        "overlay_lung_z004.png",
        "overlay_nodule_z006.png",
        "overlay_lung_z002.png",
    ]
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(p.name for p in paths)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (40, 16)  # aspect 0.5, scale 2
    with Image.open(paths[0]) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert tuple(pixels[6, 10]) == STRUCTURE_COLOURS[1]  # left edge of the lung on z=4
    assert pixels[6, 4, 0] == pixels[6, 4, 1] == pixels[6, 4, 2]  # outside: grey

    capped = write_prediction_overlays(
        ct_volume, labels, ["background", "lung", "nodule"], [3, 7], tmp_path / "cap", max_images=1
    )
    assert [p.name for p in capped] == ["overlay_lung_z004.png"]


def test_write_prediction_overlays_checks_its_inputs(
    tmp_path: Path, ct: tuple[Volume, np.ndarray]
) -> None:
    ct_volume, labels = ct
    with pytest.raises(ValueError, match="one value per structure"):
        write_prediction_overlays(ct_volume, labels, ["background", "lung"], [3, 7], tmp_path)
    with pytest.raises(ValueError, match="not a structure name"):
        write_prediction_overlays(
            ct_volume,
            labels,
            ["background", "lung"],
            [3],
            tmp_path,
            [{"label": "liver", "centroid_voxel": [1, 1, 1]}],
        )
    empty = write_prediction_overlays(
        ct_volume, np.zeros_like(labels), ["background", "lung"], [3], tmp_path
    )
    assert [p.name for p in empty] == ["overlay_empty_z004.png"]


def test_comparison_overlay_draws_truth_outline_over_prediction_fill(
    ct: tuple[Volume, np.ndarray],
) -> None:
    ct_volume, truth = ct
    pred = np.zeros_like(truth)
    pred[4, 10:16, 12:20] = 3  # overlaps the lower right of the truth square on z=4

    image = comparison_overlay(ct_volume, truth, pred, index=3, scale=1)
    assert image.size == (20, 8 + 2 * LEGEND_ROW_PX)
    pixels = np.asarray(image)
    # Aspect 0.5: output row i shows source row 2i + 1, so truth rows 3-12 land on 1-5.
    assert tuple(pixels[1, 8]) == TRUTH_COLOUR  # top edge of the truth
    assert tuple(pixels[7, 19]) == PRED_COLOUR  # edge of the prediction outside the truth
    bare = comparison_overlay(ct_volume, truth, pred, index=3, scale=1, legend=False)
    assert bare.size == (20, 8)
