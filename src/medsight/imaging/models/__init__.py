"""Networks behind one registry and one features/head surface (ResNet, DenseNet,
EfficientNet, lungct-cnn, U-Nets), checkpoints with their contract, transfer, ensembles.

Imaging layer: may import `runs`, `errors`, `console` and the rest of `imaging`; never
`serve`, `cli` or another modality.
"""
