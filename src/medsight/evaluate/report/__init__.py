"""What a reviewer reads: the self-contained HTML report, its PNG figures (ROC, confusion,
reliability, training curves), the segmentation section and the model card.

Engine layer: may import `runs`, `errors`, `console` and the rest of `evaluate` (its siblings
`train` and `releases` too); never `tasks`, a modality, `serve` or `cli`.
"""
