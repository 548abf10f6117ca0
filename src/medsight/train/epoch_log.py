"""Per-epoch metrics to ``history.csv`` and TensorBoard (and MLflow when it is installed).

TensorBoard is the light default (``tensorboard`` package); MLflow is used only if the
optional ``track`` extra is installed and ``MLFLOW_TRACKING_URI`` is set, so a plain install
never starts a tracking server or writes outside the run folder.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from medsight.runs.atomic import write_text_atomic


class EpochLog:
    """Context manager appending one row per epoch to every configured sink."""

    def __init__(self, run_dir: Path, params: dict[str, Any] | None = None) -> None:
        self.run_dir = run_dir
        self.rows: list[dict[str, float]] = []
        self._tb: Any = None
        self._mlflow: Any = None
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        if os.environ.get("MLFLOW_TRACKING_URI") and importlib.util.find_spec("mlflow"):
            import mlflow

            self._mlflow = mlflow
            mlflow.start_run(run_name=run_dir.name)
            if params:
                mlflow.log_params({k: str(v) for k, v in params.items()})

    def __enter__(self) -> EpochLog:
        return self

    def log(self, row: dict[str, float]) -> None:
        """Record one epoch (keys: epoch plus any metrics)."""
        self.rows.append(row)
        step = int(row["epoch"])
        for key, value in row.items():
            if key == "epoch":
                continue
            if self._tb is not None:
                self._tb.add_scalar(key, value, step)
            if self._mlflow is not None:
                self._mlflow.log_metric(key, value, step=step)
        write_history_csv(self.run_dir / "history.csv", self.rows)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._mlflow is not None:
            self._mlflow.end_run()


def write_history_csv(path: Path, history: list[dict[str, float]]) -> None:
    """Write the per-epoch rows as CSV (atomically)."""
    lines = []
    if history:
        keys = list(history[0])
        lines.append(",".join(keys))
        lines += [",".join(f"{row.get(k, float('nan')):.6g}" for k in keys) for row in history]
    write_text_atomic(path, "\n".join(lines) + "\n")
