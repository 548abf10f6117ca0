"""The text modality's tasks (``text-classify``, ``text-ner``), registered with the engine.

May import the engine (`tasks`, `train`, `evaluate`, `runs`), `errors`, `console` and `text`.
"""
