"""Synthetic data: a procedural chest-CT phantom in HU, the embedded seeded chest-CT cohort of
`medsight demo`, and small seeded MR-like (NIfTI) and X-ray-like (PNG) sets.

Imaging layer: may import `runs`, `errors`, `console` and the rest of `imaging`; never
`serve`, `cli` or another modality.
"""
