"""Segmentation runs evaluated in each image's own geometry: held-out evaluation, the choice
of post-processing per structure, and structure measurements (volumes, pieces).

Imaging layer: may import the engine (`tasks`, `train`, `evaluate`, `releases`, `runs`),
`errors`, `console` and the rest of `imaging`; never `modalities`, `serve`, `cli` or
another modality.
"""
