"""Run a loaded model on a stored (de-identified) input and write the result files.

The model's task (`medsight.tasks`) does the work and returns its typed result record:

Classification: class probabilities, the predicted class, the conformal set when the model
was calibrated (``refer`` when it is not one class), and for 3D models a Grad-CAM heatmap
(NIfTI aligned with the input + overlay PNGs). Segmentation: the label map as NIfTI, a DICOM
SEG for DICOM inputs, structure volumes and components, overlay PNGs (the same outputs as
`medsight predict`). Text: a `TextResult` (labels, entities with their context), marked as
read from a de-identified note. Every result names the model (name, version, SHA-256).

File names in a result are relative to the job's result folder; no server path is exposed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from medsight.runs.atomic import atomic_dir
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.jobs.model_cache import LoadedModel
from medsight.tasks.results import ModelIdentity, TextResult


def run_prediction(
    model: LoadedModel,
    source: Path,
    out: Path,
    metrics: ServiceMetrics,
    heatmap: bool = True,
) -> dict[str, Any]:
    """Predict ``source`` with ``model``, writing files into ``out`` (whole or not at all).

    Returns:
        The result record (JSON-ready): task-specific fields, ``files`` (names relative to
        ``out``), ``model`` (name, version, sha256) and ``seconds``.

    Raises:
        InputError: the input cannot be read or does not suit the model.
    """
    start = time.perf_counter()
    with atomic_dir(out) as tmp:
        record = model.run.predict(source, tmp, heatmap)
    seconds = time.perf_counter() - start
    metrics.inference.labels(model.task.run_name).observe(seconds)
    if isinstance(record, TextResult):
        record.deidentified = True  # the service stores and predicts de-identified notes only
    record.model = ModelIdentity(**model.identity())
    record.seconds = round(seconds, 3)
    return record.to_json()
