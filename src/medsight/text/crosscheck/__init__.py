"""Images and text together: what each chest-CT report says about the nodule, and the list of
cases where the image model and the report disagree (records and an HTML section).

May import `medsight.errors`, `medsight.evaluate` (report rendering) and `medsight.text` only;
image predictions come in as plain dicts.
"""
