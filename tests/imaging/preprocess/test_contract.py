from pathlib import Path

import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.data.volume_cache import VolumeCache
from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.contract import (
    PreprocessContract,
    apply_contract,
    canonical_volume,
)
from medsight.imaging.preprocess.geometry import crop_or_pad, resample_to_spacing
from medsight.imaging.preprocess.intensity import window_hu
from medsight.imaging.preprocess.lung_mask import lung_mask
from medsight.imaging.preprocess.orientation import orientation_code, reorient
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


def _head_volume(scale: float, offset: float = 0.0) -> Volume:
    """An MR-like head (no HU): bright scalp, dark bone, brain with a bright focus."""
    z, y, x = np.mgrid[0:12, 0:40, 0:36]
    rho = np.sqrt(((z - 6) / 7) ** 2 + ((y - 20) / 16) ** 2 + ((x - 18) / 14) ** 2)
    image = np.zeros(z.shape)
    image[rho < 1.0] = 1.0
    image[rho < 0.85] = 0.05
    image[rho < 0.7] = 0.6
    image[5:7, 18:21, 14:17] = 1.4
    noise = np.random.default_rng(0).normal(0.0, 0.01, image.shape)
    array = ((image + noise) * scale + offset).astype(np.float32)
    return Volume(array, (4.0, 2.0, 2.0), modality="MR", meta={"kind": "nifti"})


MR_CONTRACT = PreprocessContract(
    spacing_mm=(4.0, 3.0, 3.0),
    normalisation="image_zscore",
    percentiles=(0.5, 99.99),
    shape=(16, 32, 32),
    crop_to="foreground",
    mask_outside_lungs=False,
    modality="MR",
)


def test_mr_contract_gives_the_same_input_at_any_scan_scale() -> None:
    out = apply_contract(_head_volume(1.0), MR_CONTRACT)
    scaled = apply_contract(_head_volume(40.0, offset=120.0), MR_CONTRACT)
    assert out.shape == MR_CONTRACT.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, scaled, atol=1e-4)
    assert out.max() > 2.0  # the focus stands out in z units
    # the dataset-wide CT scheme does not: the same tissue lands at different values
    ct_scheme = MR_CONTRACT.model_copy(update={"normalisation": "zscore", "window_hu": (0, 1e4)})
    assert not np.allclose(
        apply_contract(_head_volume(1.0), ct_scheme),
        apply_contract(_head_volume(40.0, 120.0), ct_scheme),
        atol=0.1,
    )


def test_xray_contract_maps_each_image_to_its_own_percentiles() -> None:
    rng = np.random.default_rng(2)
    pixels = rng.uniform(0, 1, (1, 50, 40)) ** 2
    contract = PreprocessContract(
        spacing_mm=(1.0, 1.0, 1.0),
        normalisation="image_percentile",
        shape=(56, 48),  # 2D: what a 2D network takes
        crop_to="center",
        mask_outside_lungs=False,
        modality="DX",
    )
    outs = [
        apply_contract(Volume((pixels * gain + base).astype(np.float32), (1.0, 1.0, 1.0)), contract)
        for gain, base in ((1000.0, 0.0), (30000.0, 2000.0))
    ]
    assert outs[0].shape == (56, 48) and outs[0].min() >= 0.0 and outs[0].max() <= 1.0
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)
    assert (outs[0][:3] == 0).all() and (outs[0][:, :4] == 0).all()  # padding: darkest value
    volume = Volume(np.zeros((5, 50, 40), dtype=np.float32), (1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="one-slice"):
        apply_contract(volume, contract)


def test_reorientation_makes_ras_and_lps_storage_agree() -> None:
    lps = _head_volume(1.0)
    lps.array[2:4, 5:8, 3:6] = 1.2  # something asymmetric
    ras = reorient(lps, "RAS")
    assert orientation_code(ras) == "RAS" and not np.array_equal(ras.array, lps.array)
    contract = MR_CONTRACT.model_copy(update={"orientation": "LPS"})
    np.testing.assert_array_equal(apply_contract(ras, contract), apply_contract(lps, contract))
    assert canonical_volume(lps, contract) is lps  # already canonical: not copied
    as_read = MR_CONTRACT  # orientation None: arrays are used as stored
    assert not np.array_equal(apply_contract(ras, as_read), apply_contract(lps, as_read))


def test_denoising_is_a_contract_step() -> None:
    volume = _head_volume(1.0)
    volume.array += np.random.default_rng(5).normal(0, 0.2, volume.array.shape).astype(np.float32)
    plain = apply_contract(volume, MR_CONTRACT)
    for method, params in (("gaussian", {"sigma_vox": 1.0}), ("nl_means", {"h_factor": 0.8})):
        contract = MR_CONTRACT.model_copy(update={"denoise": method, "denoise_params": params})
        smoothed = apply_contract(volume, contract)
        assert smoothed.shape == plain.shape
        # neighbouring voxels of the brain agree more after denoising
        assert (
            np.abs(np.diff(smoothed[6:10], axis=-1)).mean()
            < np.abs(np.diff(plain[6:10], axis=-1)).mean()
        )


def test_a_contract_written_before_the_new_steps_reads_as_it_worked() -> None:
    old = (
        '{"spacing_mm": [5.0, 3.0, 3.0], "normalisation": "window", "window_hu": [-1000, 400], '
        '"mean": 0.0, "std": 1.0, "shape": [40, 72, 104], "crop_to": "lungs", '
        '"mask_outside_lungs": true, "modality": "CT"}'
    )
    contract = PreprocessContract.model_validate_json(old)
    assert contract.orientation is None and contract.denoise == "none"
    assert contract == PreprocessContract()
    with pytest.raises(ValueError, match="orientation"):
        PreprocessContract(orientation="LPQ")
    with pytest.raises(ValueError, match="percentiles"):
        PreprocessContract(percentiles=(99.0, 1.0))
