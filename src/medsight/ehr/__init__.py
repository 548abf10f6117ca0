"""The electronic-health-records modality: importers to MEDS, synthetic cohort, task labels,
sequence models and baselines, explanations, and its tasks (``ehr-risk``).

EHR layer: may import the engine (`tasks`, `train`, `evaluate`, `releases`, `runs`),
`errors`, `console` and the rest of `ehr`; never `modalities`, `serve`, `cli` or another modality.
"""
