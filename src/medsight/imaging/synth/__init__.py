"""Synthetic data: a procedural chest-CT phantom in HU and the embedded, seeded chest-CT
cohort that `medsight demo` and the tests use.

Imaging layer: may import `runs`, `errors`, `console` and the rest of `imaging`; never
`serve`, `cli` or another modality.
"""
