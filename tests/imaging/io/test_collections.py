"""PNG/JPEG images, MedMNIST archives, Decathlon / nnU-Net v2 layouts, manifest CSVs, and
`read_image`'s dispatch between them."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medsight.errors import InputError
from medsight.imaging.io.image_manifest import read_image_manifest
from medsight.imaging.io.input_kind import detect_kind
from medsight.imaging.io.limits import ReadLimits
from medsight.imaging.io.medmnist import read_medmnist
from medsight.imaging.io.raster_image import read_raster_image
from medsight.imaging.io.read_image import read_image
from medsight.imaging.io.segmentation_dataset import read_segmentation_dataset

# ---------------------------------------------------------------- PNG / JPEG


@pytest.mark.parametrize(
    ("mode", "dtype", "top"), [("L", np.uint8, 255), ("I;16", np.uint16, 65535)]
)
def test_grey_png_keeps_8_and_16_bit_values(tmp_path: Path, mode: str, dtype, top: int) -> None:
    values = np.linspace(0, top, 20 * 30).astype(dtype).reshape(20, 30)
    image = Image.fromarray(values)
    assert image.mode == mode
    image.save(tmp_path / "a.png")
    volume = read_image(tmp_path / "a.png")
    assert volume.shape == (1, 20, 30) and volume.channels == 1
    np.testing.assert_array_equal(volume.array[0], values)
    assert volume.meta["kind"] == "png" and volume.meta["bits"] == (16 if top > 255 else 8)
    assert any("1 mm assumed" in w for w in volume.warnings)


def test_rgba_png_and_jpeg(tmp_path: Path) -> None:
    rgba = np.zeros((8, 9, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    volume = read_image(tmp_path / "a.png")
    assert volume.array.shape == (1, 8, 9, 3) and float(volume.array[..., 0].max()) == 200.0
    assert "alpha channel dropped" in volume.warnings
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(tmp_path / "b.jpg", quality=95)
    jpeg = read_image(tmp_path / "b.jpg")
    assert jpeg.meta["kind"] == "jpeg" and abs(float(jpeg.array.mean()) - 90) < 2


def test_png_refusals(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(InputError, match=r"width 50 exceeds the limit of 32"):
        read_raster_image(tmp_path / "a.png", ReadLimits(max_columns=32))
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) - 30])
    with pytest.raises(InputError, match="not a readable PNG/JPEG"):
        read_raster_image(tmp_path / "t.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.gif")
    with pytest.raises(InputError, match="GIF images are not supported"):
        read_raster_image(tmp_path / "a.gif")


# ---------------------------------------------------------------- MedMNIST


def _medmnist(path: Path, three_d: bool = False) -> Path:
    shape = (28, 28, 28) if three_d else (28, 28)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 10), ("val", 3), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 5, (n, 1))
    np.savez_compressed(path, **arrays)
    return path


@pytest.mark.parametrize("three_d", [False, True])
def test_medmnist_splits(tmp_path: Path, three_d: bool) -> None:
    splits = read_medmnist(_medmnist(tmp_path / "x.npz", three_d))
    assert {k: len(v) for k, v in splits.items()} == {"train": 10, "val": 3, "test": 4}
    assert splits["train"].is_3d is three_d and splits["train"].labels.shape == (10, 1)


def test_medmnist_refusals(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", train_images=np.zeros((3, 4, 4)), train_labels=np.zeros(2))
    with pytest.raises(InputError, match=r"train_labels has shape \(2, 1\) for 3 images"):
        read_medmnist(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", train_images=np.zeros((3, 4, 4)))
    with pytest.raises(InputError, match="no train_labels array"):
        read_medmnist(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", other=np.zeros(3))
    with pytest.raises(InputError, match="not a MedMNIST archive"):
        read_medmnist(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", train_images=np.array([object()]), train_labels=np.zeros(1))
    with pytest.raises(InputError, match="holds Python objects"):
        read_medmnist(tmp_path / "d.npz")
    # an .npy header claiming a huge array: refused from the header, nothing allocated
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (100000, 100000)}
    )
    with zipfile.ZipFile(tmp_path / "e.npz", "w") as archive:
        archive.writestr("train_images.npy", header.getvalue() + b"\x00" * 64)
    with pytest.raises(InputError, match=r"claims 10000000000 bytes, its member holds 64"):
        read_medmnist(tmp_path / "e.npz")
    (tmp_path / "f.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(InputError, match="not a readable .npz"):
        read_medmnist(tmp_path / "f.npz")


# ---------------------------------------------------------------- Decathlon / nnU-Net v2


def _nifti(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)), path)


def test_decathlon_layout(tmp_path: Path) -> None:
    for name in ("imagesTr/liver_1.nii.gz", "labelsTr/liver_1.nii.gz", "imagesTs/liver_9.nii.gz"):
        _nifti(tmp_path / name)
    spec = {
        "name": "Liver",
        "modality": {"0": "CT"},
        "labels": {"0": "background", "1": "liver"},
        "numTraining": 2,
        "training": [{"image": "./imagesTr/liver_1.nii.gz", "label": "./labelsTr/liver_1.nii.gz"}],
        "test": ["./imagesTs/liver_9.nii.gz"],
    }
    (tmp_path / "dataset.json").write_text(json.dumps(spec))
    dataset = read_segmentation_dataset(tmp_path)
    assert dataset.layout == "decathlon" and dataset.labels == {"background": 0, "liver": 1}
    assert [c.case_id for c in dataset.training] == ["liver_1"] and len(dataset.test) == 1
    assert dataset.training[0].label == (tmp_path / "labelsTr/liver_1.nii.gz").resolve()
    assert dataset.warnings == ("numTraining says 2, 1 training case(s) found",)
    (tmp_path / "labelsTr/liver_1.nii.gz").unlink()
    with pytest.raises(InputError, match=r"liver_1.nii.gz: listed in dataset.json but missing"):
        read_segmentation_dataset(tmp_path)


def test_nnunet_v2_layout(tmp_path: Path) -> None:
    for case in ("BRATS_001", "BRATS_002"):
        for channel in range(2):
            _nifti(tmp_path / f"imagesTr/{case}_{channel:04d}.nii.gz")
        _nifti(tmp_path / f"labelsTr/{case}.nii.gz")
    spec = {
        "channel_names": {"0": "T1", "1": "FLAIR"},
        "labels": {"background": 0, "tumour": [1, 2], "edema": 1},
        "numTraining": 2,
        "file_ending": ".nii.gz",
    }
    (tmp_path / "dataset.json").write_text(json.dumps(spec))
    dataset = read_segmentation_dataset(tmp_path)
    assert dataset.layout == "nnunetv2" and dataset.channel_names == {0: "T1", 1: "FLAIR"}
    assert dataset.labels["tumour"] == (1, 2)
    assert [len(c.images) for c in dataset.training] == [2, 2] and not dataset.warnings
    assert detect_kind(tmp_path) == "segmentation-dataset"
    with pytest.raises(InputError, match="read_segmentation_dataset"):
        read_image(tmp_path)
    (tmp_path / "imagesTr/BRATS_002_0001.nii.gz").unlink()
    with pytest.raises(InputError, match=r"case BRATS_002 lacks channel 0001"):
        read_segmentation_dataset(tmp_path)


def test_dataset_json_refusals(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no dataset.json"):
        read_segmentation_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_segmentation_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(InputError, match="neither a Decathlon"):
        read_segmentation_dataset(tmp_path)


# ---------------------------------------------------------------- manifest CSV


def test_manifest_records(tmp_path: Path) -> None:
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / name)
    (tmp_path / "m.csv").write_text(
        "path,label,patient_id,split,sex,age\n"
        "a.png,benign,P1,train,female,61\n"
        "b.png,malignant,P2,Validation,M,\n"
    )
    records = read_image_manifest(tmp_path / "m.csv")
    assert [(r.label, r.split, r.sex, r.age) for r in records] == [
        ("benign", "train", "F", 61.0),
        ("malignant", "val", "M", None),
    ]
    assert records[0].path == tmp_path / "a.png"


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("label\nx\n", r"missing column\(s\) path"),
        ("path,label\n,x\n", r"m.csv:2: empty path"),
        ("path,label\na.png,\n", r"m.csv:2: empty label"),
        ("path,label,split\na.png,x,holdout\n", r"split 'holdout' is not one of"),
        ("path,label,sex\na.png,x,q\n", r"sex 'q' is not M, F, O or U"),
        ("path,label,age\na.png,x,old\n", r"age 'old' is not a number"),
        ("path,label,age\na.png,x,-3\n", r"age '-3' is not a non-negative"),
        ("path,label\na.png,x\na.png,y\n", r"m.csv:3: path a.png is listed twice"),
        ("path,label\nnope.png,x\n", r"nope.png does not exist"),
        ("path,label\n", r"manifest has no rows"),
    ],
)
def test_manifest_refusals(tmp_path: Path, rows: str, match: str) -> None:
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text(rows)
    with pytest.raises(InputError, match=match):
        read_image_manifest(tmp_path / "m.csv")


# ---------------------------------------------------------------- dispatch


def test_kind_comes_from_content_not_name(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "a.png").rename(tmp_path / "image.dat")
    assert detect_kind(tmp_path / "image.dat") == "png"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2)), np.eye(4)), tmp_path / "v.nii.gz")
    (tmp_path / "v.nii.gz").rename(tmp_path / "v.gz")
    assert detect_kind(tmp_path / "v.gz") == "nifti"
    with pytest.raises(InputError, match=r"must be named .nii or .nii.gz"):
        read_image(tmp_path / "v.gz")
    (tmp_path / "x.bin").write_bytes(b"\x00" * 400)
    with pytest.raises(InputError, match="not a recognised image"):
        read_image(tmp_path / "x.bin")
    with pytest.raises(InputError, match="no such file or folder"):
        read_image(tmp_path / "missing")
