"""The `medsight` command: the typer app, the one place errors become exit codes, and one thin
module per verb (plan, train, evaluate, predict, explain, export, deid, serve, users, ...).

Top layer: may import any medsight package; nothing else in medsight imports `cli` (only
`python -m medsight`).

Verb modules import heavy packages (torch, numpy, pydicom, FastAPI, SQLAlchemy, ...) inside the
command, so --help and light verbs start fast; at module level only typer, the standard library
and light medsight modules (`console`, `errors`), and parameter annotations only of builtin,
`Path` or typer types. Verbs that dispatch to a task go through `cli.task_lookup`, which
registers the modalities' tasks at the first lookup.
"""
