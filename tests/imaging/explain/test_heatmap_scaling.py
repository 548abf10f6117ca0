import numpy as np

from medsight.imaging.explain.heatmap_scaling import scaled_to_unit


def test_scaling_keeps_the_shape_of_tiny_maps() -> None:
    raw = np.array([0.0, 1e-15, 2e-15], dtype=np.float32)  # an untrained model's map
    np.testing.assert_allclose(scaled_to_unit(raw), [0.0, 0.5, 1.0], atol=1e-6)


def test_flat_and_broken_maps_become_zero() -> None:
    assert not scaled_to_unit(np.full((3, 4), 0.5, np.float32) + 1e-9).any()
    raw = np.array([np.nan, np.inf, 1.0, 3.0])
    np.testing.assert_allclose(scaled_to_unit(raw), [0.0, 0.0, 1 / 3, 1.0], atol=1e-6)


def test_zero_at_keeps_no_effect_at_zero() -> None:
    raw = np.array([-1.0, 0.0, 2.0, 4.0])
    np.testing.assert_allclose(scaled_to_unit(raw, zero_at=0.0), [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(scaled_to_unit(raw), [0.0, 0.2, 0.6, 1.0])
    assert scaled_to_unit(raw).dtype == np.float32
