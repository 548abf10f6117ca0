"""Preprocessing: the contract, the plan derived from a fingerprint, the image's modality,
resampling, orientation, cropping, intensity and normalisation, denoising, the lung mask,
recorded augmentation.

Imaging layer: may import `runs`, `errors`, `console` and the rest of `imaging`; never
`serve`, `cli` or another modality.
"""
