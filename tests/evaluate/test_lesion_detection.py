import json
import math

import numpy as np
import pytest

from medsight.evaluate.segmentation.lesion_detection import components, detect_lesions

SHAPE = (32, 64, 64)
SPACING = (2.0, 0.7, 0.7)  # (z, y, x) mm


def ball(
    center_vox: tuple[float, float, float],
    radius_mm: float,
    shape: tuple[int, int, int] = SHAPE,
    spacing: tuple[float, float, float] = SPACING,
) -> np.ndarray:
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    d2 = (
        ((zz - center_vox[0]) * spacing[0]) ** 2
        + ((yy - center_vox[1]) * spacing[1]) ** 2
        + ((xx - center_vox[2]) * spacing[2]) ** 2
    )
    return d2 <= radius_mm**2


CENTERS = [(8, 16, 16), (16, 40, 20), (24, 20, 48)]


def test_two_of_three_lesions_found_and_one_invented() -> None:
    truth = ball(CENTERS[0], 5) | ball(CENTERS[1], 6) | ball(CENTERS[2], 4)
    # Lesion 1 found well, lesion 3 only by an offset, smaller blob, lesion 2 missed.
    pred = ball(CENTERS[0], 5.5) | ball((24, 22, 50), 2.5) | ball((8, 50, 50), 3)
    result = detect_lesions(pred, truth, SPACING)
    assert (result.tp, result.fn, result.fp) == (2, 1, 1)

    by_center = {tuple(round(c) for c in r["centroid_voxel"]): r for r in result.true_lesions}
    assert set(by_center) == set(CENTERS)
    assert by_center[CENTERS[0]]["detected"] and by_center[CENTERS[2]]["detected"]
    assert not by_center[CENTERS[1]]["detected"]
    assert by_center[CENTERS[1]]["best_dice"] == 0.0
    assert by_center[CENTERS[0]]["best_dice"] > 0.7
    assert 0.0 < by_center[CENTERS[2]]["best_dice"] < by_center[CENTERS[0]]["best_dice"]

    unmatched = [c for c in result.pred_components if not c["matched"]]
    assert len(unmatched) == 1
    assert [round(v) for v in unmatched[0]["centroid_voxel"]] == [8, 50, 50]

    d = result.to_dict()
    assert (d["n_true"], d["n_pred"], d["tp"], d["fn"], d["fp"]) == (3, 3, 2, 1, 1)
    json.dumps(d, allow_nan=False)


def test_one_component_covering_two_lesions_detects_both() -> None:
    truth = ball((16, 32, 20), 3) | ball((16, 32, 40), 3)
    pred = np.zeros(SHAPE, dtype=bool)
    pred[12:20, 28:36, 16:45] = True
    result = detect_lesions(pred, truth, SPACING)
    assert (result.tp, result.fn, result.fp) == (2, 0, 0)


def test_size_floor_drops_small_components_on_both_sides() -> None:
    truth = ball(CENTERS[0], 5) | ball(CENTERS[1], 1.2)  # second is ~7 mm3
    pred = ball(CENTERS[0], 5) | ball(CENTERS[1], 1.2) | ball((24, 50, 50), 1.2)
    all_sizes = detect_lesions(pred, truth, SPACING)
    assert (all_sizes.tp, all_sizes.fn, all_sizes.fp) == (2, 0, 1)
    floored = detect_lesions(pred, truth, SPACING, min_volume_mm3=30.0)
    assert (floored.tp, floored.fn, floored.fp) == (1, 0, 0)
    assert len(floored.true_lesions) == 1


def test_diagonal_neighbours_are_one_component() -> None:
    mask = np.zeros((4, 4, 4), dtype=bool)
    mask[1, 1, 1] = mask[2, 2, 2] = True  # touching by a corner only
    assert len(components(mask, (1.0, 1.0, 1.0))) == 1
    mask[2, 2, 2] = False
    mask[3, 3, 3] = True  # a gap of one voxel
    assert len(components(mask, (1.0, 1.0, 1.0))) == 2


@pytest.mark.parametrize("radius_mm", [3.0, 6.0, 9.0])
def test_equivalent_diameter_of_a_sphere_is_within_a_voxel_of_2r(radius_mm: float) -> None:
    found = components(ball((16, 32, 32), radius_mm), SPACING)
    assert len(found) == 1
    assert found[0]["diameter_mm"] == pytest.approx(2 * radius_mm, abs=max(SPACING))


def test_component_volume_centroid_and_bbox() -> None:
    mask = np.zeros((10, 20, 20), dtype=np.uint8)
    mask[2:5, 4:8, 10:15] = 1  # 3 x 4 x 5 = 60 voxels
    mask[8, 0, 0] = 1
    first, second = components(mask, SPACING)
    voxel_mm3 = math.prod(SPACING)
    assert first["n_voxels"] == 60
    assert first["volume_mm3"] == pytest.approx(60 * voxel_mm3)
    assert first["volume_ml"] == pytest.approx(60 * voxel_mm3 / 1000)
    assert first["centroid_voxel"] == pytest.approx([3.0, 5.5, 12.0])
    assert first["bbox"] == {"start": [2, 4, 10], "stop": [5, 8, 15]}
    assert second["n_voxels"] == 1
    assert second["bbox"] == {"start": [8, 0, 0], "stop": [9, 1, 1]}
    json.dumps([first, second], allow_nan=False)


def test_nothing_to_find_and_nothing_predicted() -> None:
    empty = np.zeros(SHAPE, dtype=bool)
    result = detect_lesions(empty, empty, SPACING)
    assert (result.tp, result.fn, result.fp) == (0, 0, 0)
    assert components(empty, SPACING) == []


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="shape"):
        detect_lesions(np.zeros((4, 4, 4), bool), np.zeros((4, 4, 5), bool), SPACING)
    with pytest.raises(ValueError, match="threshold"):
        detect_lesions(np.zeros((4, 4, 4)), np.zeros((4, 4, 4), bool), SPACING)
    with pytest.raises(ValueError, match="min_volume_mm3"):
        detect_lesions(np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool), SPACING, -1.0)
