"""Batch prediction over an archive: resumable, one folder per input, local or Ray engine.

Sits between the CLI and the modalities: it may import `medsight.modalities`, the task
registry and everything below them, never `medsight.cli` or `medsight.serve`.
"""
