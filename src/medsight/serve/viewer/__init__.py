"""The browser viewer: its pages, static assets and locked-down headers, and the data it
shows (the worklist, one job's image, mask and heatmap).

Service layer: may import the rest of `serve` and everything below it (`modalities`,
`imaging`, the engine, `runs`, `errors`, `console`); never `cli`.
"""
