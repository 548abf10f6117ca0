"""The embedded default dataset: a seeded cohort of synthetic chest CT series.

Three classes as in the lung-CT example medsight starts from:

* ``normal``: no nodule;
* ``benign``: one small, smooth nodule (9-16 mm), calcified in over half the cases;
* ``malignant``: one larger (12-30 mm), lobulated, often spiculated or part-solid nodule.

Sizes overlap (12-16 mm), so size alone does not separate the classes. Patients have one to
three scans (follow-ups keep the patient's nodule; malignant ones grow), which is why splits
must be made by patient. Every case is written as a DICOM series plus a NIfTI label map
(lungs 1, nodule 2) on the series' grid, and listed in ``labels.csv``. The same seed gives
byte-identical files.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsight.imaging.io.ct_writer import StudyIdentity, deterministic_uid, write_ct_series
from medsight.imaging.io.nifti import write_nifti
from medsight.imaging.io.volume import Volume
from medsight.imaging.synth.chest_phantom import Anatomy, Nodule, render_chest
from medsight.runs.atomic import atomic_dir

CLASSES = ("normal", "benign", "malignant")
SIZES = {
    # (slices, rows, cols), slice spacing mm, in-plane spacing range mm
    "small": ((48, 128, 128), 5.0, (2.75, 3.1)),
    "full": ((96, 512, 512), 2.5, (0.69, 0.78)),
}
#: values of the NIfTI masks under ``masks/`` (0 is background)
MASK_LABELS = {"lung": 1, "nodule": 2}
LABEL_COLUMNS = ["case_id", "patient_id", "label", "sex", "age", "series_dir", "mask"]
_FIRST = ["Alex", "Sam", "Robin", "Kim", "Jo", "Lee", "Max", "Noa", "Eli", "Ari", "Mika", "Tove"]
_LAST = ["Synthson", "Fakeley", "Mockler", "Phantoma", "Voxelli", "Dicomsen", "Rendall", "Seedman"]


@dataclass(frozen=True)
class CaseSpec:
    """Everything needed to render and write one case (picklable for worker processes)."""

    case_id: str
    label: str
    identity: StudyIdentity
    anatomy: Anatomy
    nodule: Nodule | None
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    noise_seed: int


def _sample_nodule(label: str, rng: np.random.Generator) -> Nodule | None:
    if label == "normal":
        return None
    center = (
        float(rng.uniform(0.15, 0.85)),
        float(rng.uniform(0.15, 0.85)),
        float(rng.uniform(0.15, 0.85)),
    )
    axes = tuple(float(v) for v in rng.uniform(0.85, 1.15, 3))
    if label == "benign":
        calcified = str(rng.choice(["none", "central", "diffuse"], p=[0.45, 0.3, 0.25]))
        return Nodule(
            kind="benign",
            diameter_mm=float(rng.uniform(9.0, 16.0)),
            solid_hu=float(rng.uniform(10, 60)),
            center_frac=center,
            axes_ratio=axes,  # type: ignore[arg-type]
            calcified=calcified,
            calcium_hu=float(rng.uniform(300, 900)),
        )
    lobes = tuple(
        (
            float(rng.uniform(0.08, 0.22)),
            float(rng.integers(2, 6)),
            float(rng.integers(2, 6)),
            float(rng.uniform(0, 2 * np.pi)),
        )
        for _ in range(int(rng.integers(2, 5)))
    )
    spicules: tuple[tuple[float, float, float, float], ...] = ()
    if rng.random() < 0.65:
        spicules = tuple(
            (
                float(np.arccos(rng.uniform(-1, 1))),
                float(rng.uniform(0, 2 * np.pi)),
                float(rng.uniform(0.4, 1.1)),
                float(rng.uniform(1.0, 2.0)),
            )
            for _ in range(int(rng.integers(5, 13)))
        )
    part_solid = rng.random() < 0.35
    return Nodule(
        kind="malignant",
        diameter_mm=float(rng.uniform(12.0, 30.0)),
        solid_hu=float(rng.uniform(20, 60)),
        center_frac=center,
        axes_ratio=axes,  # type: ignore[arg-type]
        lobulation=lobes,
        spicules=spicules,
        ground_glass_core=float(rng.uniform(0.35, 0.6)) if part_solid else 1.0,
        ground_glass_hu=float(rng.uniform(-550, -350)),
    )


def plan_cohort(n_cases: int, seed: int, size: str = "small") -> list[CaseSpec]:
    """Sample the cohort: patients, their scans, anatomy and nodules (no rendering yet).

    Raises:
        ValueError: ``size`` is not one of `SIZES` or ``n_cases`` < 1.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    if n_cases < 1:
        raise ValueError("n_cases must be at least 1")
    shape, slice_mm, pixel_range = SIZES[size]
    rng = np.random.default_rng(seed)
    specs: list[CaseSpec] = []
    patient = 0
    while len(specs) < n_cases:
        patient += 1
        label = CLASSES[int(rng.integers(0, 3))]
        sex = "F" if rng.random() < 0.5 else "M"
        age = int(rng.integers(40, 86))
        scans = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
        patient_id = f"SYN{seed % 1000:03d}{patient:05d}"
        name = f"{_LAST[int(rng.integers(len(_LAST)))]}^{_FIRST[int(rng.integers(len(_FIRST)))]}"
        first_study = dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 1500)))
        birth = first_study - dt.timedelta(days=int(age * 365.25 + rng.integers(0, 365)))
        body = (
            float(rng.uniform(135, 165)) * (0.94 if sex == "F" else 1.0),
            float(rng.uniform(95, 120)) * (0.94 if sex == "F" else 1.0),
        )
        nodule = _sample_nodule(label, rng)
        side = "left" if rng.random() < 0.45 else "right"
        study_date = first_study
        for scan in range(scans):
            if len(specs) >= n_cases:
                break
            case_id = f"case_{len(specs) + 1:04d}"
            anatomy = Anatomy(
                body_axes_mm=(
                    body[0] * float(rng.uniform(0.97, 1.03)),
                    body[1] * float(rng.uniform(0.97, 1.03)),
                ),
                fat_mm=float(rng.uniform(6, 24)),
                lung_hu=float(rng.uniform(-900, -800)),
                lung_base_mm=float(rng.uniform(12, 32)),
                lung_height_mm=float(rng.uniform(175, 200)),
                spine_radius_mm=float(rng.uniform(14, 19)),
                rib_phase_mm=float(rng.uniform(0, 28)),
                noise_hu=float(rng.uniform(8, 35)),
                blur_vox=float(rng.uniform(0.4, 1.0)),
                vessel_seed=int(rng.integers(0, 2**31)),
                side=side,
            )
            scan_nodule = nodule
            if nodule is not None and scan > 0:
                growth = (
                    float(rng.uniform(1.05, 1.3)) ** scan if nodule.kind == "malignant" else 1.0
                )
                jitter = tuple(
                    float(np.clip(c + rng.normal(0, 0.03), 0.05, 0.95)) for c in nodule.center_frac
                )
                scan_nodule = Nodule(
                    **{
                        **nodule.__dict__,
                        "diameter_mm": nodule.diameter_mm * growth,
                        "center_frac": jitter,
                    }
                )
            pixel = float(rng.uniform(*pixel_range))
            study_uid = deterministic_uid(seed, patient_id, scan, "study")
            identity = StudyIdentity(
                patient_name=name,
                patient_id=patient_id,
                birth_date=birth.strftime("%Y%m%d"),
                sex=sex,
                age_years=age + (study_date - first_study).days // 365,
                study_date=study_date.strftime("%Y%m%d"),
                accession_number=f"ACC{seed % 1000:03d}{len(specs) + 1:06d}",
                study_uid=study_uid,
                series_uid=deterministic_uid(study_uid, "series"),
                frame_of_reference_uid=deterministic_uid(study_uid, "for"),
            )
            specs.append(
                CaseSpec(
                    case_id,
                    label,
                    identity,
                    anatomy,
                    scan_nodule,
                    shape,
                    (slice_mm, pixel, pixel),
                    int(rng.integers(0, 2**31)),
                )
            )
            study_date = study_date + dt.timedelta(days=int(rng.integers(90, 400)))
    return specs


def case_volume(spec: CaseSpec) -> tuple[Volume, np.ndarray]:
    """Render one case: the HU volume with its DICOM geometry, and its label map."""
    hu, mask = render_chest(
        spec.anatomy,
        spec.nodule,
        spec.shape,
        spec.spacing_mm,
        np.random.default_rng(spec.noise_seed),
    )
    nz, ny, nx = spec.shape
    sz, sy, sx = spec.spacing_mm
    origin = np.array([-(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy, -300.0])
    return Volume(hu, spec.spacing_mm, origin, np.eye(3), "CT"), mask


def _write_case(args: tuple[CaseSpec, str]) -> dict[str, str]:
    spec, root = args
    volume, mask = case_volume(spec)
    series_dir = Path("series") / spec.case_id
    write_ct_series(volume, spec.identity, Path(root) / series_dir)
    mask_path = Path("masks") / f"{spec.case_id}.nii.gz"
    write_nifti(Path(root) / mask_path, mask, volume.affine_ras())
    return {
        "case_id": spec.case_id,
        "patient_id": spec.identity.patient_id,
        "label": spec.label,
        "sex": spec.identity.sex,
        "age": str(spec.identity.age_years),
        "series_dir": series_dir.as_posix(),
        "mask": mask_path.as_posix(),
    }


def write_chest_ct_dataset(
    out: Path,
    n_cases: int,
    seed: int,
    size: str = "small",
    workers: int | None = None,
    on_case: Callable[[], None] | None = None,
) -> Path:
    """Generate the dataset under ``out`` (replacing it only once complete).

    Args:
        out: destination folder; holds ``labels.csv``, ``labels.json`` (mask value names),
            ``series/`` and ``masks/`` afterwards.
        n_cases: number of scans.
        seed: the same seed gives byte-identical output.
        size: ``small`` (48x128x128) or ``full`` (96x512x512).
        workers: processes used to render (default: CPU count).
        on_case: called once per finished case (progress reporting).

    Returns:
        The path of ``labels.csv``.
    """
    specs = plan_cohort(n_cases, seed, size)
    workers = workers or os.cpu_count() or 1
    with atomic_dir(out) as tmp:
        jobs = [(spec, str(tmp)) for spec in specs]
        rows: list[dict[str, str]] = []
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for row in pool.map(_write_case, jobs):
                    rows.append(row)
                    if on_case:
                        on_case()
        else:
            for job in jobs:
                rows.append(_write_case(job))
                if on_case:
                    on_case()
        with open(tmp / "labels.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=LABEL_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        # names of the mask values, for segmentation training (`medsight train --task segment`)
        (tmp / "labels.json").write_text(json.dumps(MASK_LABELS, indent=2) + "\n", encoding="utf-8")
    return out / "labels.csv"
