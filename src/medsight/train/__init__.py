"""The training engine: the one Fabric loop with task hooks (`loop`), its base config
(`config`), K-fold cross-validation (`cross_validation`; folds may run as separate jobs),
the run folder a fit writes (`run_folder`: settings, `history.csv` + TensorBoard/MLflow,
resumable state), data-parallel training under torchrun (`distributed`).

Engine layer: may import `runs`, `errors`, `console` (its siblings `evaluate` and
`releases` too); never `tasks`, a modality, `serve` or `cli`.
"""
