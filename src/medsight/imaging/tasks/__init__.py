"""The imaging tasks `image-classify` and `image-segment` (registered when `medsight.modalities`
imports them) and what they run: plan, train, folds, evaluate, predict, MedMNIST, transfer.

Imaging layer: may import the engine (`tasks`, `train`, `evaluate`, `releases`, `runs`),
`errors`, `console` and the rest of `imaging`; never `modalities`, `serve`, `cli` or
another modality.
"""
