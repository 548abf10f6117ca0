"""Which modality an image is, known before any normalisation is chosen.

Normalisation depends on it (CT: a fixed Hounsfield window; MR: per-scan z-score; X-ray:
per-image percentiles), and NIfTI, PNG and JPEG carry no modality (their readers say
``"OT"``), so it is taken, in this order, from:

1. the manifest's ``modality`` column (what the user states wins);
2. the DICOM header's Modality (anything but ``OT``);
3. the intensities: a one-slice 8/16-bit raster image (PNG/JPEG) is X-ray-like (``DX``);
   an image with a body of air near -1000 (HU) is ``CT``; anything else has no physical
   unit and is treated as ``MR`` (per-scan normalisation is the safe choice for it).

Each answer comes with its source, which the plan writes into its notes.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from medsight.imaging.io.volume import Volume

#: modality families by the normalisation they get
XRAY_MODALITIES = frozenset({"DX", "CR", "RG", "MG", "PX", "XA", "RF", "IO"})
Scheme = Literal["hu", "image_zscore", "image_percentile"]

#: air in CT is -1000 HU; reconstruction noise and partial volume spread it by ~100
AIR_HU = (-1100.0, -900.0)
#: at least this share of voxels must be air for an unlabelled image to count as CT
AIR_FRACTION = 0.01


def infer_modality(volume: Volume, declared: str = "") -> tuple[str, str]:
    """The modality of ``volume`` and where it came from.

    Args:
        volume: the image as read (values as stored, HU for DICOM CT).
        declared: the manifest's ``modality`` value for this image ("" when absent).

    Returns:
        ``(modality, source)``: e.g. ``("MR", "inferred: no air near -1000, so not CT")``.
    """
    if declared.strip():
        return declared.strip().upper(), "manifest column"
    if volume.modality and volume.modality.upper() != "OT":
        return volume.modality.upper(), "DICOM header"
    if volume.meta.get("kind") in ("png", "jpeg") and volume.shape[0] == 1:
        bits = volume.meta.get("bits", 8)
        return "DX", f"inferred: a one-slice {bits}-bit raster image is X-ray-like"
    values = np.asarray(volume.array)
    air = np.count_nonzero((values >= AIR_HU[0]) & (values <= AIR_HU[1]))
    if air >= AIR_FRACTION * values.size:
        return "CT", "inferred: air near -1000 (Hounsfield units)"
    return "MR", "inferred: no air near -1000, so not CT; no physical unit assumed"


def normalisation_scheme(modality: str, one_slice: bool) -> Scheme:
    """How images of ``modality`` are normalised.

    ``"hu"`` for CT (a window or dataset z-score on Hounsfield units), ``"image_percentile"``
    for X-ray-like modalities and other one-slice images, ``"image_zscore"`` for the rest
    (MR, PET, ...): their scale differs from scan to scan, so statistics come from each image.
    """
    if modality == "CT":
        return "hu"
    if modality in XRAY_MODALITIES or one_slice:
        return "image_percentile"
    return "image_zscore"
