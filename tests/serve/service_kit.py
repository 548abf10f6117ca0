"""Building blocks for service tests: tiny registered models, users with tokens, uploads.

The models are untrained (random weights, fixed seed): the service is tested for what it
does with a model (verify, load, run, store, audit), not for accuracy.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from fastapi.testclient import TestClient
from PIL import Image

from medsight.imaging.io.ct_writer import StudyIdentity, deterministic_uid, write_ct_series
from medsight.imaging.io.volume import Volume
from medsight.imaging.models.checkpoint import ModelContract, save_checkpoint
from medsight.imaging.models.registry import create_model
from medsight.imaging.preprocess.contract import PreprocessContract
from medsight.releases.model_registry import ModelRegistry
from medsight.serve.api.app import create_app
from medsight.serve.auth.users import HOST_CLI, add_user
from medsight.serve.settings import ServiceSettings
from medsight.serve.store.database import Database

#: planted in every synthetic upload; must never appear in a log line or a response
CANARY_NAME = "Canarypatient^Zebediah"
CANARY_ID = "CANARY-77731"


def register_models(root: Path, work: Path) -> ModelRegistry:
    """A registry with ``cls2d`` (2D classifier), ``cls3d`` (3D classifier), ``seg3d``."""
    torch.manual_seed(0)
    registry = ModelRegistry(root)
    runs = {
        "cls2d": (
            ModelContract(
                model_name="lungct-cnn",
                model_kwargs={"depth": 2},
                class_names=["normal", "benign", "malignant"],
                spatial_dims=2,
                preprocess=PreprocessContract(
                    spacing_mm=(1.0, 1.0, 1.0),
                    window_hu=(0.0, 255.0),
                    shape=(1, 32, 32),
                    crop_to="body",
                    mask_outside_lungs=False,
                    modality="OT",
                ),
                seed=0,
            ),
            create_model("lungct-cnn", depth=2, spatial_dims=2, num_classes=3),
        ),
        "cls3d": (
            ModelContract(
                model_name="lungct-cnn",
                model_kwargs={"depth": 2},
                class_names=["normal", "benign", "malignant"],
                preprocess=PreprocessContract(
                    spacing_mm=(4.0, 4.0, 4.0), shape=(8, 24, 24), crop_to="body"
                ),
                seed=0,
            ),
            create_model("lungct-cnn", depth=2, num_classes=3),
        ),
        "seg3d": (
            ModelContract(
                model_name="unet",
                task="segment",
                model_kwargs={"depth": 2, "base_filters": 4},
                class_names=["background", "lung", "nodule"],
                label_values=[1, 2],
                patch_size=(8, 32, 32),
                preprocess=PreprocessContract(
                    spacing_mm=(4.0, 4.0, 4.0),
                    normalisation="zscore",
                    window_hu=(-1000.0, 400.0),
                    mean=-500.0,
                    std=400.0,
                    shape=None,
                    crop_to="body",
                    mask_outside_lungs=False,
                ),
                seed=0,
            ),
            create_model("unet", depth=2, base_filters=4, num_classes=3),
        ),
    }
    for name, (contract, model) in runs.items():
        save_checkpoint(work / name, model, contract)
        registry.add(work / name, name)
    return registry


@dataclass
class Tokens:
    admin: str
    clinician: str
    clinician2: str
    service: str

    def header(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


def make_users(db: Database, password: str = "correct horse battery") -> Tokens:
    """One user per role (and a second clinician); the admin and clinician get passwords."""
    tokens = {}
    with db.write() as session:
        for name, role in [
            ("admin", "admin"),
            ("clinician", "clinician"),
            ("clinician2", "clinician"),
            ("service", "service"),
        ]:
            pw = password if name in ("admin", "clinician") else None
            _, tokens[name] = add_user(
                session, name, role, token_days=30, actor=HOST_CLI, password=pw
            )
        session.commit()
    return Tokens(**tokens)


@dataclass
class Service:
    client: TestClient
    tokens: Tokens
    settings: ServiceSettings
    db: Database
    registry: ModelRegistry


def service_settings(tmp: Path, database_url: str, **overrides: object) -> ServiceSettings:
    values: dict[str, object] = {
        "data_dir": tmp / "data",
        "database_url": database_url,
        "registry": tmp / "registry",
        "rate_per_minute": 100_000,
    }
    values.update(overrides)
    return ServiceSettings(**values)  # type: ignore[arg-type]


@contextmanager
def running_service(
    tmp: Path,
    database_url: str,
    registry: ModelRegistry | None = None,
    start_worker: bool = True,
    **overrides: object,
) -> Iterator[Service]:
    """The app with its worker running, users made, models registered (once per ``tmp``)."""
    settings = service_settings(tmp, database_url, **overrides)
    if registry is None:
        registry = register_models(settings.registry, tmp / "runs")
    db = Database(settings.resolved_database_url())
    tokens = make_users(db)
    app = create_app(settings, start_worker=start_worker)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Service(client, tokens, settings, db, registry)
    db.close()


def identity(seed: int = 0) -> StudyIdentity:
    return StudyIdentity(
        patient_name=CANARY_NAME,
        patient_id=CANARY_ID,
        birth_date="19420101",
        sex="F",
        age_years=84,
        study_date="20260101",
        accession_number="ACC-CANARY-1",
        study_uid=deterministic_uid("study", seed),
        series_uid=deterministic_uid("series", seed),
        frame_of_reference_uid=deterministic_uid("for", seed),
    )


def ct_series_bytes(tmp: Path, slices: int = 12, seed: int = 0) -> list[bytes]:
    """A small synthetic CT series (one DICOM file per slice) with canary identifiers."""
    rng = np.random.default_rng(seed)
    array = rng.normal(-700, 50, (slices, 40, 40)).astype(np.float32)
    array[:, 10:30, 10:30] = 40.0
    volume = Volume(array, (3.0, 2.0, 2.0), modality="CT")
    folder = tmp / f"series{seed}_{slices}"
    paths = write_ct_series(volume, identity(seed), folder)
    return [p.read_bytes() for p in paths]


def zip_bytes(files: list[bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, data in enumerate(files):
            archive.writestr(f"{CANARY_NAME}_{i}.dcm", data)
    return buffer.getvalue()


def png_bytes(size: int = 48, seed: int = 0, text: str = CANARY_NAME) -> bytes:
    """A greyscale PNG with a canary name in a text chunk."""
    from PIL import PngImagePlugin

    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8))
    info = PngImagePlugin.PngInfo()
    info.add_text("PatientName", text)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def nifti_bytes(slices: int = 10) -> bytes:
    """A small gzipped NIfTI with a canary in its description."""
    array = np.full((32, 32, slices), -500, dtype=np.int16)
    image = nib.Nifti1Image(array, np.diag([2.0, 2.0, 3.0, 1.0]))
    image.header["descrip"] = CANARY_NAME.encode()[:79]
    buffer = io.BytesIO()
    file_map = image.make_file_map({"image": buffer, "header": buffer})
    image.to_file_map(file_map)
    import gzip

    return gzip.compress(buffer.getvalue())


def upload(files: list[bytes], name: str = CANARY_NAME) -> list[tuple[str, tuple[str, bytes]]]:
    """Multipart ``files`` parts, named after the canary (names must never be echoed)."""
    return [("files", (f"{name}_{i}.dcm", data)) for i, data in enumerate(files)]


def wait_for_job(client: TestClient, job_id: str, header: dict[str, str], timeout: float = 60):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}", headers=header).json()
        if body.get("state") in ("done", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")
