"""The report labeller: per-finding labels (present / absent / uncertain / not mentioned) of a
radiology report from the rule pipeline's entities and their assertion context.

May import `medsight.errors`, `medsight.text.pipeline` (records) and `medsight.text.evaluate`.
"""
