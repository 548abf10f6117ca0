"""The authenticated inference service behind `medsight serve`: HTTP API (`api/`), accounts
(`auth/`), job queue and worker (`jobs/`), database (`store/`), DICOM node (`dicom/`), viewer.

Service layer: may import the rest of `serve` and everything below it (`modalities`,
`imaging`, the engine, `runs`, `errors`, `console`); never `cli`.
"""
