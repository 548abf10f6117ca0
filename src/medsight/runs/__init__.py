"""The run folder: write-then-rename atomic writes, the run contract (which task made a run),
and the list of ensemble members; safetensors-ready state dicts (`weights.unshared`).

Bottom of the engine: may import only `errors` and `console`; never `tasks`, `train`,
`evaluate`, `releases`, a modality, `serve` or `cli`.
"""
