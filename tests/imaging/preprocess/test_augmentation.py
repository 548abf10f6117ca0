"""Conformance of every augmentation: shape/dtype kept, seeded, replayable, image-mask aligned."""

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from medsight.errors import InputError
from medsight.imaging.preprocess.augment_geometry import elastic, flip, rotate, scale, shift
from medsight.imaging.preprocess.augment_intensity import add_noise, bias_field, gamma
from medsight.imaging.preprocess.augment_random import RANDOM_TRANSFORMS
from medsight.imaging.preprocess.augment_replay import (
    GEOMETRIC_TRANSFORMS,
    INTENSITY_TRANSFORMS,
    apply_record,
    replay,
)
from medsight.imaging.preprocess.augmentation import (
    AUGMENT_PRESETS,
    AugmentSpec,
    AugmentStep,
    augment_batch,
    augment_preset,
    replay_batch,
)

# strong settings so that every transform visibly changes its input
STEPS = [
    AugmentStep(transform="flip", options={"axes": [-2, -1]}),
    AugmentStep(transform="shift", options={"max_steps": 3}),
    AugmentStep(transform="rotate", options={"range_deg": [-30, 30], "in_plane_only": False}),
    AugmentStep(transform="scale", options={"factor_range": [0.75, 1.3], "isotropic": False}),
    AugmentStep(transform="elastic", options={"control_points": 6, "max_displacement_vox": 3}),
    AugmentStep(transform="noise", options={"std_range": [0.05, 0.2]}),
    AugmentStep(transform="gamma", options={"log_gamma_range": [-0.5, 0.5]}),
    AugmentStep(transform="bias_field", options={"max_coefficient": 0.4, "degree": 2}),
]
GEOMETRIC = [s for s in STEPS if s.transform in GEOMETRIC_TRANSFORMS]
INTENSITY = [s for s in STEPS if s.transform in INTENSITY_TRANSFORMS]
SHAPES = {2: (40, 44), 3: (14, 30, 32)}


def _ids(steps: list[AugmentStep]) -> list[str]:
    return [s.transform for s in steps]


def _cube_pair(ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``(1, 1, *spatial)`` image with a bright off-centre box and its label map (3)."""
    box = (slice(10, 24), slice(8, 20)) if ndim == 2 else (slice(3, 9), slice(8, 20), slice(6, 17))
    mask = np.zeros(SHAPES[ndim], dtype=np.uint8)
    mask[box] = 3
    rng = np.random.default_rng(1)
    image = (mask > 0).astype(np.float32) + rng.normal(0.0, 0.02, mask.shape).astype(np.float32)
    return torch.from_numpy(image)[None, None], torch.from_numpy(mask)[None, None]


def _augment(x: torch.Tensor, steps: list[AugmentStep], seed: int):
    return augment_batch(x, torch.Generator().manual_seed(seed), AugmentSpec(name="t", steps=steps))


def test_every_deterministic_transform_has_a_random_counterpart() -> None:
    assert sorted(RANDOM_TRANSFORMS) == sorted({*GEOMETRIC_TRANSFORMS, *INTENSITY_TRANSFORMS})
    assert sorted(_ids(STEPS)) == sorted(RANDOM_TRANSFORMS)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("step", STEPS, ids=_ids(STEPS))
def test_transform_conformance(step: AugmentStep, ndim: int) -> None:
    image, _ = _cube_pair(ndim)
    out, records = _augment(image, [step], seed=5)
    assert out.shape == image.shape and out.dtype == torch.float32
    assert len(records) == 1 and [r["transform"] for r in records[0]] == [step.transform]
    assert not torch.equal(out, image)

    again, same_records = _augment(image, [step], seed=5)
    assert torch.equal(again, out) and same_records == records
    others = [_augment(image, [step], seed=s)[0] for s in (6, 7, 8)]
    assert any(not torch.equal(o, out) for o in others)

    # records survive JSON and reproduce the output bit for bit
    stored = json.loads(json.dumps(records))
    assert torch.equal(replay_batch(image, stored), out)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("step", GEOMETRIC, ids=_ids(GEOMETRIC))
def test_geometric_transforms_keep_image_and_mask_aligned(step: AugmentStep, ndim: int) -> None:
    image, mask = _cube_pair(ndim)
    out_image, records = _augment(image, [step], seed=3)
    out_mask = replay_batch(mask, records, label=True)
    assert out_mask.dtype == torch.uint8 and set(out_mask.unique().tolist()) <= {0, 3}
    bright, labelled = (out_image > 0.5).numpy(), (out_mask == 3).numpy()
    assert not np.array_equal(labelled, (mask == 3).numpy())  # the box did move or deform
    dice = 2 * (bright & labelled).sum() / (bright.sum() + labelled.sum())
    assert dice > 0.97, dice  # a box moved without its mask scores below 0.9 here


@pytest.mark.parametrize("step", INTENSITY, ids=_ids(INTENSITY))
def test_intensity_transforms_leave_labels_alone(step: AugmentStep) -> None:
    image, mask = _cube_pair(3)
    _, records = _augment(image, [step], seed=2)
    assert len(records[0]) == 1
    assert torch.equal(replay_batch(mask, records, label=True), mask)


def test_a_pipeline_replays_and_aligns_boolean_masks() -> None:
    image, mask = _cube_pair(3)
    out, records = _augment(image, STEPS, seed=21)
    assert [r["transform"] for r in records[0]] == _ids(STEPS)
    assert torch.equal(replay_batch(image, json.loads(json.dumps(records))), out)
    out_mask = replay_batch(mask == 3, records, label=True)
    assert out_mask.dtype == torch.bool
    assert torch.equal(out_mask, replay_batch(mask, records, label=True) == 3)


def test_every_channel_and_sample_gets_its_own_draw() -> None:
    image, _ = _cube_pair(2)
    batch = torch.cat([image.repeat(1, 2, 1, 1)] * 4)  # 4 samples of 2 identical channels
    out, records = _augment(batch, STEPS[:4], seed=0)
    assert torch.equal(out[:, 0], out[:, 1])  # one transform per sample, all channels
    assert len({json.dumps(r) for r in records}) == 4
    assert torch.equal(replay_batch(batch, records), out)


def test_probability_zero_skips_and_records_nothing() -> None:
    image, _ = _cube_pair(2)
    steps = [AugmentStep(transform="gamma", p=0.0), AugmentStep(transform="rotate", p=0.0)]
    out, records = _augment(image, steps, seed=0)
    assert records == [[]]
    assert torch.equal(out, image)


def _loop_augment_before_plans(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """What the classification loop did before augmentation was planned (kept verbatim)."""
    spatial = x.ndim - 2
    out = []
    for sample in x:
        if torch.rand((), generator=generator) < 0.5:
            sample = sample.flip(-1)
        steps = [int(v) for v in torch.randint(-3, 4, (spatial,), generator=generator)]
        shifts = tuple(s if spatial == 3 and a == 0 else 2 * s for a, s in enumerate(steps))
        out.append(torch.roll(sample, shifts=shifts, dims=tuple(range(1, spatial + 1))))
    return torch.stack(out)


@pytest.mark.parametrize("shape", [(6, 1, 8, 12, 10), (5, 1, 20, 16), (3, 3, 12, 12)])
def test_flip_shift_preset_gives_the_batches_training_always_had(shape) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    before, now = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(4):  # several batches: the generator must advance identically
        expected = _loop_augment_before_plans(x, before)
        out, records = augment_batch(x, now, augment_preset("flip+shift"))
        assert torch.equal(out, expected)
        assert torch.equal(before.get_state(), now.get_state())
        assert torch.equal(replay_batch(x, records), out)


@pytest.mark.parametrize("name", sorted(AUGMENT_PRESETS))
def test_presets_run_in_2d_and_3d_and_replay(name: str) -> None:
    for ndim in (2, 3):
        image, _ = _cube_pair(ndim)
        batch = torch.cat([image] * 3)
        out, records = augment_batch(batch, torch.Generator().manual_seed(4), augment_preset(name))
        assert out.shape == batch.shape and len(records) == 3
        assert torch.equal(replay_batch(batch, json.loads(json.dumps(records))), out)
        assert (name == "none") == torch.equal(out, batch)


def test_spec_round_trips_through_json_and_refuses_bad_steps() -> None:
    spec = augment_preset("mr")
    assert AugmentSpec.model_validate_json(spec.model_dump_json()) == spec
    with pytest.raises(ValidationError, match="range_deg"):
        AugmentStep(transform="rotate", options={"range_deg": [10, -10]})
    with pytest.raises(ValidationError, match="unexpected keyword"):
        AugmentStep(transform="flip", options={"axis": 1})
    with pytest.raises(ValidationError):
        AugmentStep(transform="swirl")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        AugmentStep(transform="flip", p=1.5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_deterministic_transforms_do_what_they_say(ndim: int) -> None:
    image = _cube_pair(ndim)[0][0, 0].numpy()
    np.testing.assert_array_equal(flip(image, [-1]), image[..., ::-1])
    steps = [1, -2] if ndim == 2 else [1, -2, 3]
    np.testing.assert_array_equal(shift(image, steps), np.roll(image, steps, range(ndim)))
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
        replay(np.zeros((4, 4)), [{"params": {}}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="record lists"):
        replay_batch(torch.zeros(2, 1, 4, 4), [[]])
