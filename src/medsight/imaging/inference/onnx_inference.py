"""Class probabilities from an exported ONNX model, with ONNX Runtime on the CPU.

The ONNX Runtime counterpart of `medsight.imaging.inference.predictor.predict_probabilities`: same
inputs (preprocessed arrays ``(N, z, y, x)``, or ``(N, y, x)`` for a 2D model, a channel
axis added), same softmax and same left-right flip averaging, float32 out. Arrays that
already carry the channel axis are passed as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsight.errors import InputError
from medsight.hardware import usable_cores
from medsight.imaging.data.volume_cache import CachedVolumes


class OnnxPredictor:
    """An ONNX Runtime session on one ``.onnx`` file (CPU execution provider).

    Args:
        path: The ``.onnx`` file, e.g. written by `onnx_export.export_onnx`.
        threads: Intra-op threads; defaults to the cores this process may use.

    Attributes:
        path: The file.
        input_shape: The model's input shape; ``None`` for dynamic axes (the batch).
        metadata: The file's ``metadata_props`` (empty when it has none).

    Raises:
        InputError: the file is missing or is not a model ONNX Runtime can run.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such ONNX model")
        options = ort.SessionOptions()
        # ORT's default would count hyper-threads and cores a container does not allow
        options.intra_op_num_threads = threads or usable_cores()
        options.log_severity_level = 3  # errors only: ORT's warnings are not for end users
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except (
            ort_errors.Fail,
            ort_errors.InvalidArgument,
            ort_errors.InvalidGraph,
            ort_errors.InvalidProtobuf,
            ort_errors.NoSuchFile,
            ort_errors.NotImplemented,
        ) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{self.path}: not a readable ONNX model ({first})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(f"{self.path}: expected a model with one input, found {len(inputs)}")
        self._input_name = inputs[0].name
        self.input_shape: tuple[int | None, ...] = tuple(
            d if isinstance(d, int) else None for d in inputs[0].shape
        )
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise `InputError` unless a batch of ``shape`` is what the model was exported for."""
        expected = self.input_shape
        if len(shape) != len(expected) or any(
            e is not None and e != s for e, s in zip(expected[1:], shape[1:], strict=True)
        ):
            wanted = ", ".join("N" if e is None else str(e) for e in expected)
            raise InputError(f"{self.path}: the model takes input ({wanted}), got {tuple(shape)}")

    def predict_logits(self, batch: np.ndarray) -> np.ndarray:
        """Logits ``(N, classes)``, float32, for a batch ``(N, C, *spatial)``.

        Raises:
            InputError: the batch's shape is not the one the model was exported for.
        """
        x = np.ascontiguousarray(batch, dtype=np.float32)
        self.check_shape(x.shape)
        (logits,) = self.session.run(None, {self._input_name: x})
        return np.asarray(logits, dtype=np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def onnx_probabilities(
    predictor: OnnxPredictor,
    arrays: np.ndarray | CachedVolumes,
    batch_size: int = 8,
    flip_tta: bool = True,
) -> np.ndarray:
    """Softmax outputs ``(N, classes)``, float32, of ``predictor`` for ``arrays``.

    Args:
        predictor: The ONNX model.
        arrays: Preprocessed inputs ``(N, *spatial)`` (a channel axis is added) or
            ``(N, C, *spatial)``.
        batch_size: Inputs per ONNX Runtime call.
        flip_tta: Average with the probabilities of the left-right mirrored input (last
            axis), as `predict_probabilities` does.

    Raises:
        InputError: the arrays do not have the shape the model was exported for.
    """
    rank = len(predictor.input_shape)
    out = []
    for start in range(0, len(arrays), batch_size):
        x = np.asarray(arrays[start : start + batch_size], dtype=np.float32)
        if x.ndim == rank - 1:
            x = x[:, None]
        n = len(x)
        predictor.check_shape(x.shape)  # the caller's batch, before the mirrors double it
        if flip_tta:
            # one session run of 2N: ONNX Runtime's per-run overhead is paid once
            x = np.concatenate([x, np.flip(x, -1)])
        probs = _softmax(predictor.predict_logits(x))
        if flip_tta:
            probs = (probs[:n] + probs[n:]) / 2
        out.append(probs.astype(np.float32, copy=False))
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
