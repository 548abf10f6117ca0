"""Who is calling: users, API tokens and passwords, viewer login sessions with CSRF tokens,
and the FastAPI dependencies that authenticate a request and check its role.

Service layer: may import the rest of `serve` and everything below it (`modalities`,
`imaging`, the engine, `runs`, `errors`, `console`); never `cli`.
"""
