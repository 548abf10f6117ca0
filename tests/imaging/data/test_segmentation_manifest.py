import json
from pathlib import Path

import numpy as np
import pytest

from medsight.errors import InputError
from medsight.imaging.data.segmentation_manifest import parse_labels, read_segmentation_source
from medsight.imaging.io.nifti import write_nifti


def test_manifest_with_labels_json(toy_segmentation: Path) -> None:
    source = read_segmentation_source(toy_segmentation)
    assert source.labels == {"organ": 1, "nodule": 2}
    assert len(source.cases) == 15 and source.cases[0].patient_id == "P000"
    assert source.cases[0].mask_path.is_file() and source.cases[0].split == ""


def test_labels_option_overrides_and_is_validated(toy_segmentation: Path) -> None:
    source = read_segmentation_source(toy_segmentation, parse_labels("nodule=2, organ=1"))
    assert list(source.labels) == ["organ", "nodule"]  # in value order
    for bad in ("organ", "organ=0", "organ=x", "a=1,b=1"):
        with pytest.raises(InputError):
            parse_labels(bad)


def test_undeclared_labels_say_how_to_declare_them(toy_segmentation: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(
        toy_segmentation.read_text()
        .replace("images/", f"{toy_segmentation.parent}/images/")
        .replace("masks/", f"{toy_segmentation.parent}/masks/")
    )
    with pytest.raises(InputError, match="labels not declared.*--labels"):
        read_segmentation_source(csv_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("path,label\na.nii,x\n", "image column"),
        ("image,mask\n,m.nii\n", "empty image"),
        ("image,mask\nnope.nii,nope.nii\n", "does not exist"),
        ("image,mask,split\nx,y,holdout\n", "split"),
        ("image,mask\n", "no rows"),
    ],
)
def test_bad_manifests_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "m.csv").write_text(content)
    (tmp_path / "labels.json").write_text('{"a": 1}')
    with pytest.raises(InputError, match=message) as err:
        read_segmentation_source(tmp_path / "m.csv")
    assert "\n" not in str(err.value)


def _decathlon(root: Path, labels: dict) -> None:
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for name in ("a", "b"):
        write_nifti(root / "imagesTr" / f"{name}.nii.gz", np.zeros((4, 8, 8)), np.eye(4))
        write_nifti(root / "labelsTr" / f"{name}.nii.gz", np.zeros((4, 8, 8)), np.eye(4))
    spec = {
        "name": "toy",
        "modality": {"0": "CT"},
        "labels": labels,
        "training": [
            {"image": f"./imagesTr/{n}.nii.gz", "label": f"./labelsTr/{n}.nii.gz"} for n in "ab"
        ],
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(spec))


def test_decathlon_folder_gives_cases_and_label_names(tmp_path: Path) -> None:
    _decathlon(tmp_path, {"0": "background", "1": "liver", "2": "tumour"})
    source = read_segmentation_source(tmp_path)
    assert source.labels == {"liver": 1, "tumour": 2}
    assert [c.case_id for c in source.cases] == ["a", "b"]


def test_decathlon_without_structures_is_refused(tmp_path: Path) -> None:
    _decathlon(tmp_path, {"0": "background"})
    with pytest.raises(InputError, match="no labels declared"):
        read_segmentation_source(tmp_path)
