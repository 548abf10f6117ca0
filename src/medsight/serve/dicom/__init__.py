"""The DICOM node: the Storage SCP for known peers, series assembly into jobs, C-STORE of
results back to the PACS, DICOMweb multipart bodies, and the node's config.

Service layer: may import the rest of `serve` and everything below it (`modalities`,
`imaging`, the engine, `runs`, `errors`, `console`); never `cli`.
"""
