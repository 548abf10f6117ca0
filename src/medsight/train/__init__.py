"""The training engine: Fabric setup (threads, precision, seed), per-epoch logs (`history.csv`,
TensorBoard, MLflow) and the resumable training state.

Engine layer: may import `runs`, `errors`, `console` (its siblings `evaluate` and
`releases` too); never `tasks`, a modality, `serve` or `cli`.
"""
