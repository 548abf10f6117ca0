"""Fail closed on pixels: which instances header de-identification cannot make safe.

The Basic Profile cleans attributes, not pixels. Text burned into the image (names, IDs,
dates on ultrasound, screenshots, scanned documents) survives it, so such instances are held
back for review instead of being written out. An instance is held back when:

* ``burned_in_annotation``: BurnedInAnnotation is YES;
* ``recognizable_visual_features``: RecognizableVisualFeatures is YES (faces, photographs);
* ``sop_class_may_burn_in``: its SOP class commonly carries burned-in text or is a document
  (Secondary Capture family, Ultrasound, visible-light photography, endoscopy, microscopy
  and video, whole-slide imaging with its slide label, Encapsulated PDF/CDA) and
  BurnedInAnnotation is not explicitly NO.
"""

from __future__ import annotations

from pydicom import uid
from pydicom.dataset import Dataset

_RISKY_SOP_CLASSES = frozenset(
    {
        uid.SecondaryCaptureImageStorage,
        uid.MultiFrameSingleBitSecondaryCaptureImageStorage,
        uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
        uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
        uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
        uid.UltrasoundImageStorage,
        uid.UltrasoundMultiFrameImageStorage,
        "1.2.840.10008.5.1.4.1.1.6",  # Ultrasound Image Storage (Retired)
        "1.2.840.10008.5.1.4.1.1.3",  # Ultrasound Multi-frame Image Storage (Retired)
        uid.EnhancedUSVolumeStorage,
        uid.VLEndoscopicImageStorage,
        uid.VideoEndoscopicImageStorage,
        uid.VLMicroscopicImageStorage,
        uid.VideoMicroscopicImageStorage,
        uid.VLSlideCoordinatesMicroscopicImageStorage,
        uid.VLPhotographicImageStorage,
        uid.VideoPhotographicImageStorage,
        uid.OphthalmicPhotography8BitImageStorage,
        uid.OphthalmicPhotography16BitImageStorage,
        uid.DermoscopicPhotographyImageStorage,
        uid.VLWholeSlideMicroscopyImageStorage,
        uid.EncapsulatedPDFStorage,
        uid.EncapsulatedCDAStorage,
    }
)


def _flag(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return str(value).strip().upper() if value is not None else ""


def quarantine_reason(ds: Dataset) -> str | None:
    """The reason code for holding ``ds`` back (see module docstring), or None if it may pass."""
    if _flag(ds, "BurnedInAnnotation") == "YES":
        return "burned_in_annotation"
    if _flag(ds, "RecognizableVisualFeatures") == "YES":
        return "recognizable_visual_features"
    sop_class = ds.get("SOPClassUID")
    meta = getattr(ds, "file_meta", None)
    if sop_class is None and meta is not None:
        sop_class = meta.get("MediaStorageSOPClassUID")
    if str(sop_class or "") in _RISKY_SOP_CLASSES and _flag(ds, "BurnedInAnnotation") != "NO":
        return "sop_class_may_burn_in"
    return None
