"""Task labels on a MEDS dataset: the label spec, the built-in templates, and users' own files.

May import `medsight.runs`, `medsight.errors`, `medsight.console` and `medsight.ehr.io`.
"""
