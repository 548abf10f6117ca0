import numpy as np

from medsight.imaging.evaluate.postprocess_selection import choose_postprocess
from medsight.imaging.inference.postprocess import (
    PostprocessRules,
    StructureRule,
    apply_postprocess,
    apply_rule,
)


def _blobs() -> np.ndarray:
    mask = np.zeros((10, 20, 20), dtype=bool)
    mask[2:8, 2:12, 2:12] = True  # 600 voxels
    mask[5, 16, 16] = True  # a speck
    mask[5:7, 15:17, 2:4] = True  # 8 voxels
    return mask


def test_keep_largest_keeps_one_component() -> None:
    kept = apply_rule(_blobs(), (1.0, 1.0, 1.0), StructureRule(keep_largest=True))
    assert kept.sum() == 600


def test_min_volume_removes_small_components_in_mm3() -> None:
    kept = apply_rule(_blobs(), (2.0, 1.0, 1.0), StructureRule(min_volume_mm3=10.0))
    assert kept.sum() == 608  # the 8-voxel piece is 16 mm^3, the speck 2 mm^3


def test_removed_voxels_become_background_for_that_structure_only() -> None:
    indices = np.where(_blobs(), 2, 0).astype(np.uint8)
    indices[0, 0, 0] = 1
    rules = PostprocessRules(rules={"nodule": StructureRule(keep_largest=True)})
    out = apply_postprocess(indices, (1.0, 1.0, 1.0), ["background", "organ", "nodule"], rules)
    assert (out == 2).sum() == 600 and out[0, 0, 0] == 1 and out[5, 16, 16] == 0


def test_selection_adopts_a_rule_only_when_validation_dice_improves() -> None:
    truth = np.where(_blobs(), 0, 0).astype(np.uint8)
    truth[2:8, 2:12, 2:12] = 1
    noisy = truth.copy()
    noisy[5, 16, 16] = 1
    noisy[5:7, 15:17, 2:4] = 1
    rules = choose_postprocess([noisy, noisy], [truth, truth], (1.0, 1.0, 1.0), ["bg", "organ"])
    assert rules.rules["organ"].keep_largest or rules.rules["organ"].min_volume_mm3 > 0
    clean = choose_postprocess([truth], [truth], (1.0, 1.0, 1.0), ["bg", "organ"])
    assert clean.rules == {} and "no rule" in clean.notes[0]
