"""Verified, immutable model versions (checksummed, added from the host only) that the
service loads.

Engine layer: may import `runs`, `errors`, `console` (its siblings `train` and `evaluate`
too); never `tasks`, a modality, `serve` or `cli`.
"""
