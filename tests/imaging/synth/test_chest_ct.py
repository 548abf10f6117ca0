import csv
import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medsight.imaging.io.dicom_series import read_dicom_series
from medsight.imaging.synth.chest_ct import (
    CLASSES,
    case_volume,
    plan_cohort,
    write_chest_ct_dataset,
)


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    write_chest_ct_dataset(tmp_path / "a", 3, seed=11, workers=1)
    write_chest_ct_dataset(tmp_path / "b", 3, seed=11, workers=2)
    write_chest_ct_dataset(tmp_path / "c", 3, seed=12, workers=1)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    # 48 slices and a mask per case, labels.csv and labels.json
    assert len(a) == 3 * 48 + 3 + 2
    assert json.loads((tmp_path / "a" / "labels.json").read_text()) == {"lung": 1, "nodule": 2}
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_labels_csv_lists_every_case(small_dataset: Path) -> None:
    rows = list(csv.DictReader((small_dataset / "labels.csv").read_text().splitlines()))
    assert [r["case_id"] for r in rows] == [f"case_{i:04d}" for i in range(1, 7)]
    assert set(rows[0]) >= {"case_id", "patient_id", "label", "sex", "age", "series_dir"}
    for r in rows:
        assert r["label"] in CLASSES
        assert r["sex"] in {"F", "M"} and 18 < int(r["age"]) < 100
        assert len(list((small_dataset / r["series_dir"]).glob("*.dcm"))) == 48


def test_cohort_has_follow_up_scans_and_all_classes() -> None:
    specs = plan_cohort(300, seed=0)
    patients = [s.identity.patient_id for s in specs]
    assert len(set(patients)) < 0.8 * len(patients)  # follow-ups share a patient
    counts = {c: sum(s.label == c for s in specs) for c in CLASSES}
    assert min(counts.values()) > 60
    for pid in set(patients):
        assert len({s.label for s in specs if s.identity.patient_id == pid}) == 1
    sizes = {
        c: [s.nodule.diameter_mm for s in specs if s.label == c and s.nodule] for c in CLASSES[1:]
    }
    assert max(sizes["benign"]) > min(sizes["malignant"])  # size alone does not separate


def test_hu_ranges_of_anatomy() -> None:
    spec = next(s for s in plan_cohort(10, seed=3) if s.label == "malignant")
    volume, mask = case_volume(spec)
    hu = volume.array
    assert hu.dtype == np.float32 and hu.shape == (48, 128, 128)
    assert hu.min() >= -1024 and hu.max() <= 3071
    corner = hu[:, :6, :6]
    assert -1030 < np.median(corner) < -950  # air
    lung = hu[mask == 1]
    assert -920 < np.median(lung) < -760
    assert hu.max() > 300  # bone
    assert (mask == 2).sum() > 20  # a visible nodule
    assert np.median(hu[mask == 2]) > -700


def test_dicom_tags(small_dataset: Path) -> None:
    row = next(csv.DictReader((small_dataset / "labels.csv").read_text().splitlines()))
    files = sorted((small_dataset / row["series_dir"]).glob("*.dcm"))
    datasets = [pydicom.dcmread(f) for f in files]
    ds = datasets[0]
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.Modality == "CT" and ds.PixelRepresentation == 1 and ds.BitsAllocated == 16
    assert float(ds.RescaleSlope) == 1 and float(ds.RescaleIntercept) == -1024
    assert len(ds.PixelSpacing) == 2 and float(ds.SliceThickness) > 0
    assert str(ds.PatientName) and ds.PatientID == row["patient_id"] and ds.PatientBirthDate
    assert ds.PatientSex == row["sex"] and ds.PatientAge.endswith("Y")
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert len({str(d.get(key)) for d in datasets}) == 1
    assert len({d.SOPInstanceUID for d in datasets}) == len(datasets)
    assert ds.pixel_array.dtype == np.int16


def test_mask_is_aligned_with_series(small_dataset: Path) -> None:
    row = next(csv.DictReader((small_dataset / "labels.csv").read_text().splitlines()))
    volume = read_dicom_series(small_dataset / row["series_dir"])
    mask = nib.load(small_dataset / row["mask"])
    np.testing.assert_allclose(mask.affine, volume.affine_ras(), atol=1e-3)
    data = np.asarray(mask.dataobj).transpose(2, 1, 0)
    assert data.shape == volume.shape
    assert set(np.unique(data)) <= {0, 1, 2}
    # lungs are dark: the mask marks air-density voxels
    assert np.median(volume.array[data == 1]) < -700


@pytest.mark.parametrize("size", ["tiny", ""])
def test_unknown_size_is_rejected(size: str) -> None:
    with pytest.raises(ValueError, match="size"):
        plan_cohort(3, 0, size)
