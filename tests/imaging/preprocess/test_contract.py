from pathlib import Path

import numpy as np
import pytest

from medsight.imaging.data.volume_cache import VolumeCache
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.contract import PreprocessContract, apply_contract
from medsight.imaging.preprocess.geometry import crop_or_pad, resample_to_spacing
from medsight.imaging.preprocess.intensity import window_hu
from medsight.imaging.preprocess.lung_mask import lung_mask
from medsight.imaging.synth.chest_ct import case_volume, plan_cohort


def test_window_maps_range_to_unit_interval() -> None:
    out = window_hu(np.array([-2000.0, -1000.0, -300.0, 400.0, 3000.0]), (-1000.0, 400.0))
    np.testing.assert_allclose(out, [0, 0, 0.5, 1, 1])
    with pytest.raises(ValueError):
        window_hu(np.zeros(3), (10.0, 10.0))


def test_resample_keeps_extent_and_values() -> None:
    array = np.full((10, 20, 30), 7.0, dtype=np.float32)
    out = resample_to_spacing(array, (2.0, 1.0, 1.0), (4.0, 2.0, 3.0))
    assert out.shape == (5, 10, 10)
    np.testing.assert_allclose(out, 7.0)


def test_crop_or_pad_centres_and_fills() -> None:
    array = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    out = crop_or_pad(array, (3, 8, 7), fill=-1)
    np.testing.assert_array_equal(out[:, 1:7, :], array[1:4])
    assert (out[:, 0] == -1).all() and (out[:, 7] == -1).all()


@pytest.fixture(scope="module")
def abnormal_cases() -> list[tuple[Volume, np.ndarray]]:
    specs = [s for s in plan_cohort(24, seed=1) if s.label != "normal"][:6]
    return [case_volume(s) for s in specs]


def test_lung_mask_keeps_nodules_and_drops_the_chest_wall(abnormal_cases) -> None:
    contract = PreprocessContract()
    for volume, mask in abnormal_cases:
        hu = resample_to_spacing(volume.array, volume.spacing_mm, contract.spacing_mm)
        nodule = resample_to_spacing(
            (mask == 2).astype(np.float32), volume.spacing_mm, contract.spacing_mm
        )
        lungs = lung_mask(hu)
        kept = (lungs & (nodule > 0.5)).sum() / max((nodule > 0.5).sum(), 1)
        assert kept > 0.95
        truth = resample_to_spacing(
            (mask > 0).astype(np.float32), volume.spacing_mm, contract.spacing_mm
        )
        assert (lungs & (truth < 0.5)).sum() < 0.02 * lungs.sum()  # hardly any chest wall
        assert not (
            lungs & (hu > 200) & (nodule < 0.05)
        ).any()  # no bone (calcified nodules are fine)


def test_contract_output(abnormal_cases) -> None:
    contract = PreprocessContract()
    out = apply_contract(abnormal_cases[0][0], contract)
    assert out.shape == contract.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and out.max() > 0.5


def test_contract_rejects_bad_spacing() -> None:
    with pytest.raises(ValueError):
        PreprocessContract(spacing_mm=(0.0, 1.0, 1.0))


def test_cache_hits_and_invalidates(tmp_path: Path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    (series / "a.dcm").write_bytes(b"one")
    cache = VolumeCache(tmp_path / "cache", PreprocessContract(shape=(2, 2, 2)))
    calls = []

    def compute(path: Path) -> np.ndarray:
        calls.append(path)
        return np.full((2, 2, 2), len(calls), dtype=np.float32)

    first = cache.get(series, compute)
    again = cache.get(series, compute)
    assert len(calls) == 1 and cache.hits == 1 and np.array_equal(first, again)
    (series / "a.dcm").write_bytes(b"two")
    changed = cache.get(series, compute)
    assert len(calls) == 2 and changed[0, 0, 0] == 2
    other = VolumeCache(
        tmp_path / "cache", PreprocessContract(shape=(2, 2, 2), window_hu=(-500.0, 0.0))
    )
    other.get(series, compute)
    assert len(calls) == 3
