"""Datasets on disk: manifests, patient-level splits, dataset fingerprints, the caches of
preprocessed volumes, and seeded patch sampling.

Imaging layer: may import `runs`, `errors`, `console` and the rest of `imaging`; never
`serve`, `cli` or another modality.
"""
