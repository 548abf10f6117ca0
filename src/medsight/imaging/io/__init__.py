"""Reading and writing imaging files: DICOM (series, SEG, SR, SC), NIfTI, PNG/JPEG,
MedMNIST, manifests, input inspection, and de-identification (`deid/`).

Imaging layer: may import `runs`, `errors`, `console` and the rest of `imaging`; never
`serve`, `cli` or another modality.
"""
