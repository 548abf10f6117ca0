"""Choose post-processing per structure on the validation split (nnU-Net's rule, extended).

For each structure the candidates are: nothing; keep the largest component; remove
components under 10, 30, 100 or 300 mm^3. A candidate is adopted only when it raises the
structure's mean validation Dice by more than ``min_gain`` over doing nothing (a rule
that changes nothing is not adopted), so a run never post-processes on noise.
"""

from __future__ import annotations

import numpy as np

from medsight.imaging.data.volume_cache import CachedVolumes
from medsight.imaging.inference.postprocess import PostprocessRules, StructureRule, apply_rule
from medsight.imaging.inference.segmenter import Segmenter

MIN_VOLUMES_MM3 = (10.0, 30.0, 100.0, 300.0)


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    denominator = int(pred.sum()) + int(truth.sum())
    return 1.0 if denominator == 0 else 2.0 * int((pred & truth).sum()) / denominator


def choose_postprocess(
    predictions: list[np.ndarray],
    truths: list[np.ndarray],
    spacing_mm: tuple[float, ...],
    class_names: list[str],
    min_gain: float = 0.002,
) -> PostprocessRules:
    """Rules that improve mean validation Dice per structure.

    Args:
        predictions, truths: label indices (0 background, k = ``class_names[k]``) per case,
            on one grid of ``spacing_mm``.
        spacing_mm: voxel spacing of that grid.
        class_names: background first.
        min_gain: least Dice improvement for a rule to be adopted.
    """
    candidates = [StructureRule(keep_largest=True)] + [
        StructureRule(min_volume_mm3=v) for v in MIN_VOLUMES_MM3
    ]
    rules: dict[str, StructureRule] = {}
    notes: list[str] = []
    for k, name in enumerate(class_names[1:], start=1):
        preds = [p == k for p in predictions]
        trues = [t == k for t in truths]
        base = float(np.mean([_dice(p, t) for p, t in zip(preds, trues, strict=True)]))
        best, best_rule = base, None
        for rule in candidates:
            score = float(
                np.mean(
                    [
                        _dice(apply_rule(p, spacing_mm, rule), t)
                        for p, t in zip(preds, trues, strict=True)
                    ]
                )
            )
            if score > best + min_gain:
                best, best_rule = score, rule
        if best_rule is not None:
            rules[name] = best_rule
            notes.append(
                f"{name}: {best_rule.model_dump()} raises validation Dice {base:.4f} -> {best:.4f}"
            )
        else:
            notes.append(f"{name}: no rule beats the raw prediction (Dice {base:.4f})")
    return PostprocessRules(rules=rules, notes=notes)


def choose_for_run(
    segmenter: Segmenter,
    images: CachedVolumes,
    labels: CachedVolumes,
    spacing_mm: tuple[float, ...],
) -> PostprocessRules:
    """Rules for a trained run, from its validation cases (preprocessed, cached)."""
    predictions = [segmenter.probabilities(images[i]).argmax(0).numpy() for i in range(len(images))]
    truths = [labels[i] for i in range(len(labels))]
    return choose_postprocess(predictions, truths, spacing_mm, segmenter.class_names)
