"""The FastAPI application: app factory, middleware (body limit, rate limit, request log),
error answers, Prometheus metrics, shared state, multipart uploads; routes in `routes/`.

Service layer: may import the rest of `serve` and everything below it (`modalities`,
`imaging`, the engine, `runs`, `errors`, `console`); never `cli`.
"""
