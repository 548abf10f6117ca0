"""The imaging tasks: classification and segmentation runs (config, data, fit, folds,
evaluate, predict), the MedMNIST protocol, and transfer-learning setup.

Imaging layer: may import the engine (`tasks`, `train`, `evaluate`, `releases`, `runs`),
`errors`, `console` and the rest of `imaging`; never `modalities`, `serve`, `cli` or
another modality.
"""
