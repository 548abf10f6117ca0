"""Every metric written once, with patient-bootstrap confidence intervals: `classification/`,
`segmentation/`, and `report/` (HTML report, figures, model card).

Engine layer: may import `runs`, `errors`, `console` and the rest of `evaluate` (its siblings
`train` and `releases` too); never `tasks`, a modality, `serve` or `cli`.
"""
