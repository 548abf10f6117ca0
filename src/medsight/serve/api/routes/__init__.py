"""The HTTP routes: login and users, predict, jobs and their files, DICOMweb (STOW-RS,
WADO-RS), and operations (liveness, readiness, metrics, models, docs).

Service layer: may import the rest of `serve` and everything below it (`modalities`,
`imaging`, the engine, `runs`, `errors`, `console`); never `cli`.
"""
