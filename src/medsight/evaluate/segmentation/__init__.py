"""Segmentation metrics: overlap (the one Dice, per case and pooled over cases), surface
distance and volume per case and class, lesion detection, and summaries over cases with
patient-bootstrap intervals.

Engine layer: may import `runs`, `errors`, `console` and the rest of `evaluate` (its siblings
`train` and `releases` too); never `tasks`, a modality, `serve` or `cli`.
"""
