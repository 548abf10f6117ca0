"""The imaging modality: file I/O and de-identification, synthetic CT, preprocessing,
datasets, models, inference, explanations, segmentation evaluation, and its tasks.

Imaging layer: may import the engine (`tasks`, `train`, `evaluate`, `releases`, `runs`),
`errors`, `console` and the rest of `imaging`; never `modalities`, `serve`, `cli` or
another modality.
"""
