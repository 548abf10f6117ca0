"""Why a model predicted what it did: Grad-CAM, Grad-CAM++, occlusion, heatmaps mapped back
onto the input, overlays, the randomisation sanity check, and conformal sets.

Imaging layer: may import the engine (`tasks`, `train`, `evaluate`, `releases`, `runs`),
`errors`, `console` and the rest of `imaging`; never `modalities`, `serve`, `cli` or
another modality.
"""
