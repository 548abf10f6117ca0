"""The clinical-text modality: note readers (files, tables, FHIR, HL7 v2, DICOM SR), the rule
pipeline (sections, entities, assertion context), de-identification of free text, the report
labeller, a synthetic corpus with gold annotations, models and baselines, and its tasks
(``text-classify``, ``text-ner``).

Text layer: may import the engine (`tasks`, `train`, `evaluate`, `releases`, `runs`), `errors`,
`console`, `keyed_digest`, `patient_date_offset` and the rest of `text`; never `modalities`,
`serve`, `cli` or another modality.
"""
