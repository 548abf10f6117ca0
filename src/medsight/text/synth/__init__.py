"""The synthetic clinical-text corpus with gold annotations (`medsight synth notes`): chest-CT
radiology reports, discharge summaries with planted PHI and patient-feedback comments.

May import `medsight.errors`, `medsight.runs` and `medsight.text` only (cases and patients come
in as plain dicts; the CLI derives them from the imaging and EHR cohorts).
"""
