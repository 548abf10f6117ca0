"""medsight: deep learning on medical images, from DICOM folders to explained models.

Layers, imports pointing down only (`lint-imports` checks it): `cli` > `serve` > `modalities` >
`imaging` > `tasks` > `train`, `evaluate`, `releases` > `runs` > `errors`, `console`.
"""

__version__ = "0.1.0"
