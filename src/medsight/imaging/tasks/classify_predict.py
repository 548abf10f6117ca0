"""Predicting with a classification run: class probabilities, conformal sets, heatmaps.

`predict_classify` is `medsight predict` for a classification run (a table or ``--json``);
`LoadedClassifier` is the same model loaded once for the service, predicting one stored input
into a result folder. Both return `ClassificationResult` records.

INPUT may be image files, DICOM series folders, or a manifest CSV (its ``path`` or
``series_dir`` column). Inputs are preprocessed with the run's contract and predicted in
batches; ONNX Runtime runs the model (the run's ``model.onnx``, or the model exported when
the run is loaded; PyTorch when bf16 is asked for or the run is a K-fold ensemble). When
the run has been evaluated, ``RUN/conformal.json`` turns each prediction into a conformal
set (classes the model cannot rule out at the calibrated coverage); a set that is not a
single class means "refer"; and ``RUN/decision.json`` holds the per-class weights the
predicted class is called with (`medsight.evaluate.classification.class_decision`, fitted
on validation so that every class gets called; before evaluation: the plain argmax).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rich.table import Table

from medsight.console import console, progress_bar
from medsight.errors import InputError
from medsight.evaluate.classification.class_decision import read_decision_weights
from medsight.imaging.data.volume_loading import preprocess_image
from medsight.imaging.explain.conformal_sets import conformal_sets
from medsight.imaging.explain.explain_run import HEATMAP_FILE, explain_input
from medsight.imaging.inference.predictor import Predictor
from medsight.tasks.options import PredictOptions
from medsight.tasks.results import ClassificationResult

CHUNK = 16


def _record(
    names: list[str],
    probs: np.ndarray,
    sets: list[list[str]] | None,
    i: int,
    weights: np.ndarray | None,
) -> dict:
    # the run's per-class decision rule once it is evaluated (every class called), else argmax
    called = probs[i] if weights is None else probs[i] * weights
    record: dict = {
        "predicted": names[int(called.argmax())],
        "probabilities": {n: float(p) for n, p in zip(names, probs[i], strict=True)},
    }
    if sets is not None:
        record["conformal_set"] = sets[i]
        record["refer"] = len(sets[i]) != 1
    return record


def predict_classify(run_dir: Path, paths: list[Path], options: PredictOptions) -> None:
    """Classify every input; print a table, or JSON with ``options.as_json``.

    Raises:
        InputError: segmentation-only options, or an input that cannot be read.
    """
    # first: a missing run says which command makes it
    predictor = Predictor(run_dir, bf16=options.bf16)
    if options.out is not None:
        raise InputError("--out is for segmentation runs; use --heatmap FOLDER for heatmaps")
    names = predictor.class_names
    contract = predictor.contract.preprocess
    chunks = []
    with progress_bar() as progress:
        bar = progress.add_task("predicting", total=len(paths))
        # chunks bound the memory: a long manifest is never held in RAM at once
        for start in range(0, len(paths), CHUNK):
            batch = np.stack([preprocess_image(p, contract) for p in paths[start : start + CHUNK]])
            chunks.append(predictor.predict_array(batch))
            progress.advance(bar, len(batch))
    probs = np.concatenate(chunks)
    sets = conformal_sets(run_dir, probs, names)
    weights = read_decision_weights(run_dir, names)
    results: list[ClassificationResult] = []
    for i, path in enumerate(paths):
        result = ClassificationResult(input=str(path), **_record(names, probs, sets, i, weights))
        if options.heatmap is not None:
            folder = options.heatmap / f"{i + 1:04d}_{path.name}"
            explain_input(run_dir, path, folder)
            result.heatmap = str(folder / HEATMAP_FILE)
        results.append(result)
    if options.as_json:
        records = [_cli_json(r) for r in results]
        print(json.dumps(records[0] if len(records) == 1 else records))
        return
    table = Table(title=f"predictions of {run_dir}")
    for column in ["input", *names, "predicted", *(["conformal set"] if sets else [])]:
        table.add_column(column)
    for r in results:
        row = [str(r.input), *[f"{r.probabilities[n]:.3f}" for n in names], r.predicted]
        if r.conformal_set is not None:
            row.append("{" + ", ".join(r.conformal_set) + "}" + (" refer" if r.refer else ""))
        table.add_row(*row)
    console.print(table)


def _cli_json(result: ClassificationResult) -> dict:
    """The CLI's JSON: the record without the service-only fields it never had."""
    data = result.to_json()
    data.pop("files", None)
    return data


class LoadedClassifier:
    """A classification run loaded once (PyTorch, not ONNX) for the service."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.predictor = Predictor(folder, use_onnx=False)
        self.contract = self.predictor.contract

    def is_2d(self) -> bool:
        """True when the model takes single 2D images (one slice)."""
        c = self.contract
        return c.spatial_dims == 2 or (
            c.preprocess.shape is not None and c.preprocess.shape[0] == 1
        )

    def predict(self, source: Path, out: Path, heatmap: bool) -> ClassificationResult:
        """Probabilities (+ conformal set) for ``source``; a Grad-CAM heatmap for 3D models."""
        names = self.predictor.class_names
        array = preprocess_image(source, self.contract.preprocess)
        probs = self.predictor.predict_array(array[None])
        sets = conformal_sets(self.folder, probs, names)
        weights = read_decision_weights(self.folder, names)
        result = ClassificationResult(**_record(names, probs, sets, 0, weights))
        if heatmap and self.contract.spatial_dims == 3 and not self.is_2d():
            record = explain_input(self.folder, source, out / "heatmap")
            result.files = [f"heatmap/{name}" for name in record.get("files", [])]
        return result
