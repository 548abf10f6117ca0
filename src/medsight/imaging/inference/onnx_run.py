"""``model.onnx`` in a run folder: written from ``model.safetensors``, used only while it matches.

A run folder's source of truth is ``model.safetensors`` + ``model.json`` (see
`medsight.imaging.models.checkpoint`). ``model.onnx`` is a derived, faster copy for CPU inference;
it records the SHA-256 of the weights it was exported from, and `open_run_onnx` refuses it
once the weights have changed (a retrained or replaced model), instead of silently
predicting with the old network.

`run_onnx` is what prediction uses: the folder's ``model.onnx`` when it has one, else the
model exported when the run is loaded (to a temporary file, never into the run folder, which
may be a read-only release). ONNX Runtime ran both demo networks 2-4x faster than eager
PyTorch here (``bench/predict_latency.py``), which repays the export (about a second) from
the first series on.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from medsight.errors import InputError
from medsight.imaging.inference.onnx_export import export_onnx
from medsight.imaging.inference.onnx_inference import OnnxPredictor
from medsight.imaging.models.checkpoint import WEIGHTS, load_checkpoint

ONNX_FILE = "model.onnx"
DIGEST_KEY = "weights_sha256"


def weights_digest(path: Path) -> str:
    """SHA-256 (hex) of the file at ``path``."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_run(
    run_dir: Path, example_shape: Sequence[int] | None = None, path: Path | None = None
) -> Path:
    """Export the model of ``run_dir`` to ``run_dir/model.onnx`` (or ``path``).

    Args:
        run_dir: A run folder with ``model.safetensors`` and ``model.json``.
        example_shape: Input shape ``(N, C, *spatial)``; by default
            ``(2, in_channels, *preprocess.shape)`` from the contract, or the sliding
            window's ``patch_size`` for a segmentation run (its windows are what the
            network sees).
        path: where to write instead of ``run_dir/model.onnx``.

    Returns:
        The path written.

    Raises:
        InputError: the run folder has no readable model, or its contract fixes no input
            shape and none was given.
    """
    run_dir = Path(run_dir)
    model, contract = load_checkpoint(run_dir)
    if example_shape is None:
        spatial = contract.patch_size or contract.preprocess.shape
        if spatial is None or len(spatial) != contract.spatial_dims:
            raise InputError(
                f"{run_dir}: the model contract fixes no {contract.spatial_dims}D input shape; "
                "give the shape to export with"
            )
        example_shape = (2, contract.in_channels, *spatial)
    metadata = {
        DIGEST_KEY: weights_digest(run_dir / WEIGHTS),
        "model_name": contract.model_name,
        "class_names": json.dumps(contract.class_names),
    }
    return export_onnx(model, example_shape, path or run_dir / ONNX_FILE, metadata=metadata)


def open_run_onnx(run_dir: Path) -> OnnxPredictor | None:
    """The ONNX model of ``run_dir``, or None when the folder has no ``model.onnx``.

    Raises:
        InputError: ``model.onnx`` is unreadable, or was not exported from the folder's
            current ``model.safetensors`` (export it again, or delete it to use PyTorch).
    """
    run_dir = Path(run_dir)
    path = run_dir / ONNX_FILE
    if not path.is_file():
        return None
    predictor = OnnxPredictor(path)
    weights = run_dir / WEIGHTS
    recorded = predictor.metadata.get(DIGEST_KEY)
    if not weights.is_file() or recorded != weights_digest(weights):
        raise InputError(
            f"{path}: not exported from this folder's {WEIGHTS} (stale or foreign); "
            "export it again, or delete it to predict with the PyTorch weights"
        )
    return predictor


def run_onnx(run_dir: Path) -> OnnxPredictor | None:
    """ONNX Runtime on ``run_dir``'s model: its ``model.onnx``, else exported now.

    Returns:
        None when onnxruntime is not installed or the network cannot be exported (it is
        then run with PyTorch, as before).

    Raises:
        InputError: the folder's ``model.onnx`` is stale or unreadable (see `open_run_onnx`).
    """
    exported = open_run_onnx(run_dir)
    if exported is not None:
        return exported
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    with tempfile.TemporaryDirectory(prefix="medsight-onnx-") as tmp:
        try:
            path = export_run(run_dir, path=Path(tmp) / ONNX_FILE)
        except InputError:
            return None  # the contract fixes no input shape to export with
        except Exception as exc:  # noqa: BLE001 - any exporter failure falls back to PyTorch
            warnings.warn(
                f"{run_dir}: ONNX export failed ({type(exc).__name__}); predicting with PyTorch",
                stacklevel=2,
            )
            return None
        return OnnxPredictor(path)
