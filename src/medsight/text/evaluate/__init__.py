"""Scores for the text modality: entity spans (exact and overlap), assertion context, de-
identification (recall per PHI type, leaked gold strings) and report-label agreement with
report-bootstrap CIs. Every function returns JSON-ready dicts.

May import `medsight.evaluate` (the bootstrap), `medsight.errors` and `medsight.text` records.
"""
