"""Write a CT volume as a DICOM series: CT Image Storage, one uncompressed file per slice.

pydicom builds each dataset; what is ours is the mapping from a `Volume` (LPS geometry,
HU) to the per-slice tags. Output is deterministic: every UID comes from the caller's
entropy, no wall-clock time is written, so the same inputs give byte-identical files.
Stored values are int16 with RescaleSlope 1 and RescaleIntercept -1024.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

from medsight.imaging.io.volume import Volume

RESCALE_INTERCEPT = -1024.0
PYDICOM_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's registered UID root


@dataclass(frozen=True)
class StudyIdentity:
    """Who and what a synthetic series belongs to (all fictitious)."""

    patient_name: str
    patient_id: str
    birth_date: str  # YYYYMMDD
    sex: str  # M/F
    age_years: int
    study_date: str  # YYYYMMDD
    accession_number: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    institution: str = "Synthetic General Hospital"
    referring_physician: str = "Synth^Referrer"
    series_description: str = "CHEST CT"


def deterministic_uid(*entropy: object) -> str:
    """A valid DICOM UID derived from ``entropy`` (same entropy, same UID)."""
    return str(generate_uid(prefix=PYDICOM_ROOT, entropy_srcs=[str(e) for e in entropy]))


def write_ct_series(volume: Volume, identity: StudyIdentity, folder: Path) -> list[Path]:
    """Write ``volume`` (HU, ``[z, y, x]``) as one DICOM file per slice under ``folder``.

    Files are named in InstanceNumber order, head first (as many scanners do), which is the
    reverse of the array's slice order: readers must sort by position, not by name.

    Returns:
        The written paths.
    """
    folder.mkdir(parents=True, exist_ok=True)
    stored = np.clip(np.rint(volume.array - RESCALE_INTERCEPT), -32768, 32767).astype(np.int16)
    n = volume.shape[0]
    row_dir, col_dir, normal = (
        volume.direction[:, 0],
        volume.direction[:, 1],
        volume.direction[:, 2],
    )
    sz, sy, sx = volume.spacing_mm
    paths = []
    for k in range(n):
        instance = n - k  # head first
        sop_uid = UID(deterministic_uid(identity.series_uid, k))
        position = volume.origin_lps + normal * sz * k
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = UID(PYDICOM_ROOT + "1")
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = identity.study_date
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "093000"
        ds.AccessionNumber = identity.accession_number
        ds.Modality = "CT"
        ds.Manufacturer = "medsight-synth"
        ds.InstitutionName = identity.institution
        ds.ReferringPhysicianName = identity.referring_physician
        ds.StudyDescription = "CT CHEST"
        ds.SeriesDescription = identity.series_description
        ds.PatientName = identity.patient_name
        ds.PatientID = identity.patient_id
        ds.PatientBirthDate = identity.birth_date
        ds.PatientSex = identity.sex
        ds.PatientAge = f"{identity.age_years:03d}Y"
        ds.BodyPartExamined = "CHEST"
        ds.SliceThickness = f"{sz:.4g}"
        ds.KVP = "120"
        ds.PatientPosition = "FFS"
        ds.StudyInstanceUID = identity.study_uid
        ds.SeriesInstanceUID = identity.series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = 1
        ds.InstanceNumber = instance
        ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
        ds.FrameOfReferenceUID = identity.frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = f"{float(position @ normal):.4f}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = int(stored.shape[1]), int(stored.shape[2])
        ds.PixelSpacing = [f"{sy:.6g}", f"{sx:.6g}"]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.WindowCenter = "-600"
        ds.WindowWidth = "1500"
        ds.RescaleIntercept = f"{RESCALE_INTERCEPT:.0f}"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.PixelData = stored[k].tobytes()
        path = folder / f"IM{instance:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
