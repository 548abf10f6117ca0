import json
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric, compute_surface_dice
from scipy import ndimage

from medsight.evaluate.segmentation.segmentation_metrics import (
    METRIC_NAMES,
    case_metrics,
    global_dice,
    overlap_counts,
)

LABELS = {1: "liver", 2: "tumour"}
SPACING = (3.0, 1.0, 0.5)  # (z, y, x) mm, deliberately anisotropic


def blobby_label_map(seed: int, shape: tuple[int, int, int] = (20, 36, 40)) -> np.ndarray:
    """Two irregular classes from thresholded smooth noise; class 2 partly inside class 1."""
    rng = np.random.default_rng(seed)
    smooth = [ndimage.gaussian_filter(rng.normal(size=shape), sigma=3) for _ in range(2)]
    out = np.zeros(shape, dtype=np.int64)
    out[smooth[0] > np.quantile(smooth[0], 0.75)] = 1
    out[smooth[1] > np.quantile(smooth[1], 0.93)] = 2
    return out


def one_hot(label_map: np.ndarray, n_classes: int = 3) -> torch.Tensor:
    t = torch.from_numpy(label_map).long()
    return torch.nn.functional.one_hot(t, n_classes).permute(3, 0, 1, 2)[None].float()


def cube(shape: tuple[int, int, int], start: tuple[int, int, int], size: int) -> np.ndarray:
    out = np.zeros(shape, dtype=np.uint8)
    z, y, x = start
    out[z : z + size, y : y + size, x : x + size] = 1
    return out


# The reference MONAI calls on full volumes trip MONAI's own deprecation warning.
@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dice_hd95_and_surface_dice_agree_with_monai_on_full_volume(seed: int) -> None:
    truth = blobby_label_map(seed)
    pred = blobby_label_map(seed + 100)
    # Make the prediction overlap the truth substantially, as a real model would.
    pred = np.where(np.random.default_rng(seed).random(truth.shape) < 0.7, truth, pred)
    ours = case_metrics(pred, truth, SPACING, LABELS, tolerance_mm=1.5)

    y_pred, y = one_hot(pred), one_hot(truth)
    dice = DiceMetric(include_background=False, reduction="none")(y_pred, y)
    hd95 = HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")(
        y_pred, y, spacing=list(SPACING)
    )
    nsd = compute_surface_dice(
        y_pred, y, class_thresholds=[1.5, 1.5], spacing=list(SPACING), use_subvoxels=False
    )
    for c, name in enumerate(LABELS.values()):
        assert ours[name]["dice"] == pytest.approx(float(dice[0, c]), abs=1e-6)
        assert ours[name]["hd95_mm"] == pytest.approx(float(hd95[0, c]), abs=1e-4)
        assert ours[name]["surface_dice"] == pytest.approx(float(nsd[0, c]), abs=1e-4)
        d = ours[name]["dice"]
        assert d is not None and 0.0 < d < 1.0
        assert ours[name]["iou"] == pytest.approx(d / (2 - d), abs=1e-12)


def test_identical_cubes_are_perfect() -> None:
    a = cube((16, 20, 20), (4, 5, 5), 8)
    m = case_metrics(a, a.copy(), SPACING, {1: "cube"})["cube"]
    assert m["dice"] == 1.0
    assert m["iou"] == 1.0
    assert m["hd95_mm"] == 0.0
    assert m["surface_dice"] == pytest.approx(1.0)
    assert m["volume_diff_ml"] == 0.0
    assert m["volume_diff_pct"] == 0.0


@pytest.mark.parametrize(
    ("axis", "shift", "expected_mm"),
    [(2, 4, 4 * 0.5), (1, 2, 2 * 1.0), (0, 1, 1 * 3.0)],
)
def test_hd95_of_a_shifted_cube_is_shift_times_spacing_of_that_axis(
    axis: int, shift: int, expected_mm: float
) -> None:
    truth = cube((24, 30, 30), (6, 8, 8), 10)
    pred = np.roll(truth, shift, axis=axis)
    m = case_metrics(pred, truth, SPACING, {1: "cube"})["cube"]
    assert m["hd95_mm"] == pytest.approx(expected_mm, abs=1e-4)
    # Same volume, part of it overlapping.
    assert m["volume_diff_ml"] == 0.0
    assert m["dice"] == pytest.approx(1 - shift / 10)


def test_surface_dice_is_one_within_tolerance_and_below_one_outside() -> None:
    truth = cube((24, 30, 30), (6, 8, 8), 10)
    pred = np.roll(truth, 2, axis=2)  # 2 voxels x 0.5 mm = 1 mm
    loose = case_metrics(pred, truth, SPACING, {1: "c"}, tolerance_mm=1.5)["c"]
    tight = case_metrics(pred, truth, SPACING, {1: "c"}, tolerance_mm=0.4)["c"]
    assert loose["surface_dice"] == pytest.approx(1.0)
    assert tight["surface_dice"] is not None and tight["surface_dice"] < 0.9


def test_disjoint_structures_have_zero_overlap_and_a_finite_distance() -> None:
    truth = cube((16, 40, 40), (4, 2, 2), 6)
    pred = cube((16, 40, 40), (4, 2, 30), 6)
    m = case_metrics(pred, truth, SPACING, {1: "c"}, tolerance_mm=1.0)["c"]
    assert m["dice"] == 0.0
    assert m["iou"] == 0.0
    assert m["surface_dice"] == 0.0
    assert m["hd95_mm"] is not None and m["hd95_mm"] >= (30 - 8) * 0.5


def test_volumes_are_voxel_count_times_voxel_volume_in_ml() -> None:
    truth = cube((16, 20, 20), (2, 2, 2), 5)  # 125 voxels
    pred = cube((16, 20, 20), (2, 2, 2), 6)  # 216 voxels
    m = case_metrics(pred, truth, SPACING, {1: "c"})["c"]
    voxel_ml = 3.0 * 1.0 * 0.5 / 1000
    assert m["volume_true_ml"] == pytest.approx(125 * voxel_ml)
    assert m["volume_pred_ml"] == pytest.approx(216 * voxel_ml)
    assert m["volume_diff_ml"] == pytest.approx(91 * voxel_ml)
    assert m["volume_diff_pct"] == pytest.approx(100 * 91 / 125)


def test_empty_structure_conventions() -> None:
    shape = (10, 12, 12)
    present = cube(shape, (2, 2, 2), 4)
    absent = np.zeros(shape, dtype=np.uint8)

    both = case_metrics(absent, absent, SPACING, {1: "c"})["c"]
    assert (both["dice"], both["iou"], both["surface_dice"], both["hd95_mm"]) == (1, 1, 1, 0)
    assert both["volume_diff_ml"] == 0.0
    assert both["volume_diff_pct"] is None

    missed = case_metrics(absent, present, SPACING, {1: "c"})["c"]
    assert (missed["dice"], missed["iou"], missed["surface_dice"]) == (0, 0, 0)
    assert missed["hd95_mm"] is None
    assert missed["volume_diff_pct"] == pytest.approx(-100.0)

    invented = case_metrics(present, absent, SPACING, {1: "c"})["c"]
    assert (invented["dice"], invented["iou"], invented["surface_dice"]) == (0, 0, 0)
    assert invented["hd95_mm"] is None
    assert invented["volume_diff_pct"] is None
    assert invented["volume_diff_ml"] == pytest.approx(64 * 1.5 / 1000)


def test_classes_are_scored_independently_and_background_is_not_a_class() -> None:
    truth = blobby_label_map(3)
    pred = truth.copy()
    pred[pred == 2] = 0  # tumour missed, liver perfect
    m = case_metrics(pred, truth, SPACING, LABELS)
    assert set(m) == {"liver", "tumour"}
    assert set(m["liver"]) == set(METRIC_NAMES)
    assert m["liver"]["dice"] == 1.0
    assert m["tumour"]["dice"] == 0.0
    json.dumps(m, allow_nan=False)


def test_label_maps_of_bool_dtype_and_int_spacing_work() -> None:
    a = cube((10, 12, 12), (2, 2, 2), 4).astype(bool)
    b = np.roll(a, 1, axis=2)
    m = case_metrics(b, a, (1, 1, 2), {1: "c"})["c"]
    assert m["hd95_mm"] == pytest.approx(2.0)
    assert m["dice"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("pred", "truth", "spacing", "labels", "match"),
    [
        (np.zeros((4, 4, 4), int), np.zeros((4, 4, 5), int), SPACING, {1: "a"}, "shape"),
        (np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), SPACING, {1: "a"}, "integer label map"),
        (np.zeros((4, 4, 4), int), np.zeros((4, 4, 4), int), (1.0, 1.0), {1: "a"}, "entries"),
        (np.zeros((4, 4, 4), int), np.zeros((4, 4, 4), int), (1, 0, 1), {1: "a"}, "positive"),
        (np.zeros((4, 4, 4), int), np.zeros((4, 4, 4), int), SPACING, {0: "bg"}, "background"),
        (np.zeros((4, 4, 4), int), np.zeros((4, 4, 4), int), SPACING, {1: "a", 2: "a"}, "unique"),
    ],
)
def test_invalid_inputs_raise(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing: Sequence[float],
    labels: dict[int, str],
    match: str,
) -> None:
    with pytest.raises(ValueError, match=match):
        case_metrics(pred, truth, spacing, labels)


def test_two_dimensional_label_maps_work() -> None:
    truth = np.zeros((30, 30), dtype=np.uint8)
    truth[5:15, 5:15] = 1
    pred = np.roll(truth, 3, axis=1)
    m = case_metrics(pred, truth, (1.0, 0.5), {1: "c"})["c"]
    assert m["hd95_mm"] == pytest.approx(1.5)
    assert m["dice"] == pytest.approx(0.7)
    assert m["volume_true_ml"] == pytest.approx(100 * 0.5 / 1000)


def test_pooled_dice_counts_voxels_not_cases() -> None:
    """A model that never finds the nodule: per case it looks perfect on nodule-free cases."""
    shape = (8, 10, 10)
    nodule = cube(shape, (2, 2, 2), 3)
    empty = np.zeros(shape, dtype=np.uint8)
    cases = [(empty, nodule), (empty, empty), (empty, empty)]  # (pred, truth)
    counts = [overlap_counts(pred, truth, 1) for pred, truth in cases]
    assert counts[0] == (0, 0, 27)
    assert [global_dice([c]) for c in counts] == [0.0, 1.0, 1.0]
    assert global_dice(counts) == 0.0


def test_pooled_dice_of_one_case_is_that_cases_dice() -> None:
    truth = blobby_label_map(4)
    pred = blobby_label_map(5)
    per_case = case_metrics(pred, truth, SPACING, LABELS)
    for value, name in LABELS.items():
        assert global_dice([overlap_counts(pred, truth, value)]) == per_case[name]["dice"]
