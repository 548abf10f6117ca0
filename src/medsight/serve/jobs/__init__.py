"""Jobs: the database queue, the worker threads, the cache of verified models, running a model
on a stored input, and who may see a job.

Service layer: may import the rest of `serve` and everything below it (`modalities`,
`imaging`, the engine, `runs`, `errors`, `console`); never `cli`.
"""
