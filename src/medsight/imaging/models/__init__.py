"""Networks behind one registry and one features/head surface (ResNet, DenseNet,
EfficientNet, lungct-cnn, U-Nets), checkpoints with their contract, transfer, ensembles.

Imaging layer: may import `runs`, `errors`, `console` and the rest of `imaging`; never
`serve`, `cli` or another modality.
"""

# importing the families runs their @register_model decorators
from medsight.imaging.models import (  # noqa: F401
    densenet,
    efficientnet,
    lungct_cnn,
    resnet,
    resnet_small,
    unet,
)
