"""Shared fixtures: small synthetic series written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsight.imaging.synth.chest_ct import write_chest_ct_dataset


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-case synthetic chest-CT dataset (seed 7); returns its folder."""
    out = tmp_path_factory.mktemp("chest") / "data"
    write_chest_ct_dataset(out, 6, seed=7, workers=1)
    return out


def write_toy_segmentation(out: Path, n: int = 15, seed: int = 0, dicom: bool = False) -> Path:
    """``n`` small CT-like NIfTI volumes with label maps (organ 1, nodule 2); returns the CSV.

    16 x 48 x 48 voxels at (3, 1.5, 1.5) mm: a soft-tissue body, a dark "organ" (air-like,
    -800 HU) and, in two cases of three, a bright 3-voxel-radius "nodule" inside it. Writes
    ``manifest.csv`` (image, mask, patient_id) and ``labels.json`` beside it. With
    ``dicom`` the images are CT series folders (``series/toy_NNN/``) instead of NIfTI.
    """
    import csv
    import json

    import numpy as np

    from medsight.imaging.io.ct_writer import StudyIdentity, deterministic_uid, write_ct_series
    from medsight.imaging.io.nifti import write_nifti
    from medsight.imaging.io.volume import Volume

    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    z, y, x = np.mgrid[0:16, 0:48, 0:48]
    rows = []
    for i in range(n):
        image = np.full((16, 48, 48), -1000.0, dtype=np.float32)
        body = ((y - 24) / 20) ** 2 + ((x - 24) / 22) ** 2 <= 1
        image[body] = 40.0
        cy, cx = 24 + rng.integers(-3, 4), 20 + rng.integers(-3, 4)
        organ = body & (((y - cy) / 10) ** 2 + ((x - cx) / 8) ** 2 + ((z - 8) / 6) ** 2 <= 1)
        image[organ] = -800.0
        labels = organ.astype(np.uint8)
        if i % 3:
            nz, ny, nx = 8, cy + rng.integers(-2, 3), cx + rng.integers(-2, 3)
            nodule = ((z - nz) * 2) ** 2 + (y - ny) ** 2 + (x - nx) ** 2 <= 9
            image[nodule] = 60.0
            labels[nodule] = 2
        image += rng.normal(0, 20, image.shape).astype(np.float32)
        volume = Volume(image, (3.0, 1.5, 1.5), np.array([-36.0, -36.0, 10.0 * i]))
        if dicom:
            identity = StudyIdentity(
                f"Toy^{i}",
                f"P{i:03d}",
                "19700101",
                "F",
                50,
                "20260101",
                f"A{i}",
                deterministic_uid("study", i),
                deterministic_uid("series", i),
                deterministic_uid("for", i),
            )
            volume.modality = "CT"
            write_ct_series(volume, identity, out / "series" / f"toy_{i:03d}")
            image_path = f"series/toy_{i:03d}"
        else:
            write_nifti(out / "images" / f"toy_{i:03d}.nii.gz", image, volume.affine_ras())
            image_path = f"images/toy_{i:03d}.nii.gz"
        write_nifti(out / "masks" / f"toy_{i:03d}.nii.gz", labels, volume.affine_ras())
        rows.append([image_path, f"masks/toy_{i:03d}.nii.gz", f"P{i:03d}"])
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "mask", "patient_id"])
        writer.writerows(rows)
    (out / "labels.json").write_text(json.dumps({"organ": 1, "nodule": 2}))
    return out / "manifest.csv"


@pytest.fixture(scope="session")
def toy_segmentation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 15-case toy segmentation dataset (`write_toy_segmentation`); returns the manifest."""
    return write_toy_segmentation(tmp_path_factory.mktemp("toyseg"))


@pytest.fixture(scope="session")
def toy_segmentation_dicom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy segmentation dataset with DICOM CT series as images; returns the manifest."""
    return write_toy_segmentation(tmp_path_factory.mktemp("toysegdcm"), dicom=True)
