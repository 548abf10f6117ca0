"""HTML views of analysed notes: the text with sections, entities highlighted by type and their
assertion context marked (negated struck through, uncertain dashed, historical, family).

May import `medsight.text.pipeline` (its records) only.
"""
