"""Conformal sets for new predictions, from the calibration a run's evaluation saved.

``RUN/conformal.json`` (written by `medsight evaluate`) holds the threshold ``qhat`` and the
score; a set lists every class the model cannot rule out at the calibrated coverage, and a
set that is not a single class means "refer".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medsight.errors import InputError
from medsight.evaluate.classification.conformal import nonconformity_scores
from medsight.imaging.tasks.classify_evaluate import CONFORMAL_FILE


def conformal_sets(
    run_dir: Path, probs: np.ndarray, class_names: list[str]
) -> list[list[str]] | None:
    """One conformal set per row of ``probs``, or None when the run has no calibration.

    Raises:
        InputError: ``conformal.json`` is unreadable or belongs to other classes.
    """
    path = run_dir / CONFORMAL_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        qhat, score = float(record["qhat"]), str(record["score"])
        if record["class_names"] != class_names or score not in ("lac", "aps"):
            raise ValueError("does not match the model")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: invalid conformal record ({exc})") from None
    members = nonconformity_scores(probs, score) <= qhat  # type: ignore[arg-type]
    return [[class_names[c] for c in np.nonzero(row)[0]] for row in members]
