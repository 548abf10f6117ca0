"""What the batch tests share: a small classification run and how to copy one."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from medsight.imaging.models.checkpoint import ModelContract, save_checkpoint
from medsight.imaging.models.registry import create_model
from medsight.imaging.preprocess.contract import PreprocessContract

#: a folder name of the kind archives use, to check that no summary or message repeats it
PATIENT_FOLDER = "DOE^JANE_19700101"
#: positions of the corrupt series and the text file in `conftest.batch_archive`
BAD = [3, 7]


def write_classify_run(folder: Path, seed: int = 0) -> Path:
    """A seeded three-class `lungct-cnn` run (16 x 32 x 32 input): weights and contract."""
    torch.manual_seed(seed)
    contract = ModelContract(
        model_name="lungct-cnn",
        class_names=["normal", "nodule", "mass"],
        preprocess=PreprocessContract(shape=(16, 32, 32)),
        model_kwargs={"depth": 3},
        seed=seed,
    )
    save_checkpoint(folder, create_model("lungct-cnn", depth=3), contract)
    return folder


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of ``run`` (to change its weights without touching the shared one)."""
    shutil.copytree(run, dest)
    return dest


def outputs(out: Path) -> dict[str, bytes]:
    """Every output file under ``out`` (relative name -> bytes), the batch summary left out."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "batch_summary.json"
    }
