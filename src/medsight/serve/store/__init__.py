"""The service database (SQLite or PostgreSQL) and what it keeps: schema, hash-chained audit
trail, de-identified inputs, the de-id key, re-identification data, retention.

Service layer: may import the rest of `serve` and everything below it (`modalities`,
`imaging`, the engine, `runs`, `errors`, `console`); never `cli`.
"""
