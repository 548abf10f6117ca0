"""Conformance of every augmentation: shape/dtype kept, seeded, replayable, image-mask aligned."""

import json

import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.preprocess.augment_geometry import elastic, flip, rotate, scale
from medsight.imaging.preprocess.augment_intensity import add_noise, bias_field, gamma
from medsight.imaging.preprocess.augment_random import (
    RandomBiasField,
    RandomElastic,
    RandomFlip,
    RandomGamma,
    RandomNoise,
    RandomRotate,
    RandomScale,
    RandomTransform,
)
from medsight.imaging.preprocess.augment_replay import (
    GEOMETRIC_TRANSFORMS,
    INTENSITY_TRANSFORMS,
    apply_record,
    replay,
)
from medsight.imaging.preprocess.augmentation import augment

# strong settings so that every transform visibly changes its input
TRANSFORMS: list[RandomTransform] = [
    RandomFlip(axes=(-2, -1)),
    RandomRotate(range_deg=(-30.0, 30.0), in_plane_only=False),
    RandomScale(factor_range=(0.75, 1.3), isotropic=False),
    RandomElastic(control_points=6, max_displacement_vox=3.0),
    RandomNoise(std_range=(0.05, 0.2)),
    RandomGamma(log_gamma_range=(-0.5, 0.5)),
    RandomBiasField(max_coefficient=0.4, degree=2),
]
GEOMETRIC = [t for t in TRANSFORMS if t.name in GEOMETRIC_TRANSFORMS]
INTENSITY = [t for t in TRANSFORMS if t.name in INTENSITY_TRANSFORMS]
SHAPES = {2: (40, 44), 3: (14, 30, 32)}


def _ids(transforms: list[RandomTransform]) -> list[str]:
    return [t.name for t in transforms]


def _cube_pair(ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """An image with a bright off-centre box and the box's label map (label 3)."""
    box = (slice(10, 24), slice(8, 20)) if ndim == 2 else (slice(3, 9), slice(8, 20), slice(6, 17))
    mask = np.zeros(SHAPES[ndim], dtype=np.uint8)
    mask[box] = 3
    rng = np.random.default_rng(1)
    image = (mask > 0).astype(np.float32) + rng.normal(0.0, 0.02, mask.shape).astype(np.float32)
    return image, mask


def test_every_deterministic_transform_has_a_random_counterpart() -> None:
    assert sorted(_ids(TRANSFORMS)) == sorted({*GEOMETRIC_TRANSFORMS, *INTENSITY_TRANSFORMS})


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("transform", TRANSFORMS, ids=_ids(TRANSFORMS))
def test_transform_conformance(transform: RandomTransform, ndim: int) -> None:
    image, _ = _cube_pair(ndim)
    out, records = augment(image, [transform], seed=5)
    assert out.shape == image.shape and out.dtype == np.float32
    assert len(records) == 1 and records[0]["transform"] == transform.name
    assert not np.array_equal(out, image)

    again, same_records = augment(image, [transform], seed=5)
    np.testing.assert_array_equal(again, out)
    assert same_records == records
    others = [augment(image, [transform], seed=s)[0] for s in (6, 7, 8)]
    assert any(not np.array_equal(o, out) for o in others)

    # records survive JSON and reproduce the output bit for bit
    stored = json.loads(json.dumps(records))
    np.testing.assert_array_equal(replay(image, stored), out)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("transform", GEOMETRIC, ids=_ids(GEOMETRIC))
def test_geometric_transforms_keep_image_and_mask_aligned(
    transform: RandomTransform, ndim: int
) -> None:
    image, mask = _cube_pair(ndim)
    out_image, records = augment(image, [transform], seed=3)
    out_mask = replay(mask, records, label=True)
    assert out_mask.dtype == np.uint8 and set(np.unique(out_mask)) <= {0, 3}
    # a second random pass on the mask from the same seed draws the same geometry
    np.testing.assert_array_equal(augment(mask, [transform], seed=3, label=True)[0], out_mask)
    bright, labelled = out_image > 0.5, out_mask == 3
    assert not np.array_equal(labelled, mask == 3)  # the box did move or deform
    dice = 2 * (bright & labelled).sum() / (bright.sum() + labelled.sum())
    assert dice > 0.97, dice  # a box moved without its mask scores below 0.9 here


@pytest.mark.parametrize("transform", INTENSITY, ids=_ids(INTENSITY))
def test_intensity_transforms_leave_labels_alone(transform: RandomTransform) -> None:
    _, mask = _cube_pair(3)
    out, records = augment(mask, [transform], seed=2, label=True)
    assert len(records) == 1  # recorded, so the image's stream and records line up
    np.testing.assert_array_equal(out, mask)
    assert out.dtype == np.uint8


def test_a_pipeline_replays_and_aligns_boolean_masks() -> None:
    image, mask = _cube_pair(3)
    out, records = augment(image, TRANSFORMS, seed=21)
    assert [r["transform"] for r in records] == _ids(TRANSFORMS)
    np.testing.assert_array_equal(replay(image, json.loads(json.dumps(records))), out)
    out_mask = replay(mask == 3, records, label=True)
    assert out_mask.dtype == np.bool_
    np.testing.assert_array_equal(out_mask, replay(mask, records, label=True) == 3)


def test_probability_zero_skips_and_records_nothing() -> None:
    image, _ = _cube_pair(2)
    out, records = augment(image, [RandomGamma(p=0.0), RandomRotate(p=0.0)], seed=0)
    assert records == []
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("ndim", [2, 3])
def test_deterministic_transforms_do_what_they_say(ndim: int) -> None:
    image, _ = _cube_pair(ndim)
    np.testing.assert_array_equal(flip(image, [-1]), image[..., ::-1])
    np.testing.assert_allclose(scale(image, 1.0), image, atol=1e-6)
    np.testing.assert_allclose(elastic(image, 5, 0.0, seed=1), image, atol=1e-6)
    np.testing.assert_allclose(bias_field(image, np.zeros((3,) * ndim)), image, atol=1e-6)
    brighter = gamma(image, 0.5)
    assert brighter.min() == pytest.approx(image.min(), abs=1e-6)
    assert brighter.max() == pytest.approx(image.max(), abs=1e-5)
    assert brighter.mean() > image.mean()
    noisy = add_noise(image, 0.5, seed=4)
    assert np.std(noisy - image) == pytest.approx(0.5, rel=0.05)
    # a quarter turn in the axial plane is a pure index permutation
    square = image[..., :30, :30]
    angles = [90.0] if ndim == 2 else [90.0, 0.0, 0.0]
    turned = rotate(square, angles, order=1)
    np.testing.assert_allclose(turned, np.rot90(square, k=-1, axes=(-2, -1)), atol=1e-5)


def test_replay_rejects_unknown_records() -> None:
    with pytest.raises(InputError):
        apply_record(np.zeros((4, 4)), {"transform": "swirl", "params": {}})
    with pytest.raises(InputError):
        replay(np.zeros((4, 4)), [{"params": {}}])
