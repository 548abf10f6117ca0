"""Classifier evaluation: headline and clinical (one-vs-rest) metrics, calibration, the
operating point, split-conformal sets, subgroup tables, and the full `metrics.json`.

Engine layer: may import `runs`, `errors`, `console` and the rest of `evaluate` (its siblings
`train` and `releases` too); never `tasks`, a modality, `serve` or `cli`.
"""
