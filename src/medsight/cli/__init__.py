"""The `medsight` command: the typer app, the one place errors become exit codes, and one thin
module per verb (plan, train, evaluate, predict, explain, export, deid, serve, users, ...).

Top layer: may import any medsight package; nothing else in medsight imports `cli` (only
`python -m medsight`).
"""

# every verb dispatches through the task registry: register the modalities' tasks once
import medsight.modalities  # noqa: E402, F401
