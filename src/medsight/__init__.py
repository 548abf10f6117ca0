"""medsight: deep learning on medical images, from DICOM folders to explained models."""

__version__ = "0.1.0"
