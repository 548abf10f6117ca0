"""Run a loaded model on a stored (de-identified) input and write the result files.

Classification: class probabilities, the predicted class, the conformal set when the model
was calibrated (``refer`` when it is not one class), and for 3D models a Grad-CAM heatmap
(NIfTI aligned with the input + overlay PNGs). Segmentation: the label map as NIfTI, a DICOM
SEG for DICOM inputs, structure volumes and components, overlay PNGs (the same outputs as
`medsight predict`). Every result names the model (name, version, SHA-256).

File names in a result are relative to the job's result folder; no server path is exposed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from medsight.imaging.data.volume_loading import preprocess_image
from medsight.imaging.explain.conformal_sets import conformal_sets
from medsight.imaging.explain.explain_run import explain_input
from medsight.imaging.tasks.segment_predict import segment_one
from medsight.runs.atomic import atomic_dir
from medsight.serve.api.service_metrics import ServiceMetrics
from medsight.serve.jobs.model_cache import LoadedModel


def _relative(value: Any, root: Path) -> Any:
    """``value`` with every string path under ``root`` made relative to it."""
    if isinstance(value, dict):
        return {k: _relative(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    if isinstance(value, str) and value.startswith(str(root)):
        return Path(value).relative_to(root).as_posix()
    return value


def _classify(model: LoadedModel, source: Path, out: Path, heatmap: bool) -> dict[str, Any]:
    assert model.predictor is not None
    names = model.predictor.class_names
    array = preprocess_image(source, model.contract.preprocess)
    probs = model.predictor.predict_array(array[None])
    result: dict[str, Any] = {
        "task": "classify",
        "predicted": names[int(np.argmax(probs[0]))],
        "probabilities": {n: float(p) for n, p in zip(names, probs[0], strict=True)},
    }
    sets = conformal_sets(model.folder, probs, names)
    if sets is not None:
        result["conformal_set"] = sets[0]
        result["refer"] = len(sets[0]) != 1
    files: list[str] = []
    if heatmap and model.contract.spatial_dims == 3 and not model.is_2d():
        record = explain_input(model.folder, source, out / "heatmap")
        files += [f"heatmap/{name}" for name in record.get("files", [])]
    result["files"] = files
    return result


def _segment(model: LoadedModel, source: Path, out: Path) -> dict[str, Any]:
    assert model.segmenter is not None
    record = segment_one(model.segmenter, source, out / "segmentation")
    files = sorted(p.relative_to(out).as_posix() for p in (out / "segmentation").iterdir())
    return {
        "task": "segment",
        "structures": _relative(record["structures"], out),
        "files": files,
    }


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
        if model.task == "segment":
            result = _segment(model, source, tmp)
        else:
            result = _classify(model, source, tmp, heatmap)
    seconds = time.perf_counter() - start
    metrics.inference.labels(model.task).observe(seconds)
    result["model"] = model.identity()
    result["seconds"] = round(seconds, 3)
    return result
