"""Why a text model labelled a note: token attributions and their HTML rendering over the text.

May import torch, `medsight.errors`, `medsight.runs` and `medsight.text`.
"""
