"""The rule pipeline on spaCy: sentences, sections, entity targets, measurements and
ConText-style assertion (negation, certainty, temporality, experiencer).

May import `medsight.errors`, `medsight.text.io` and `medsight.text.pipeline` only.
"""
