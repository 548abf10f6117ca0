"""Deployment: the model registry (and, in later issues, the HTTP service and DICOM node)."""
