"""`medsight explain RUN SUBJECT`: the events that drove one patient's risk, as a timeline.

SUBJECT is a subject_id among the run's encoded samples (its latest prediction time is
explained), or a file with one patient's record (a FHIR R4 Bundle or MEDS rows), which the
task's prediction helpers encode as the service does. The run's primary sequence model is
rebuilt from ``plan.json`` + ``model.json`` + ``model.safetensors`` (the code descriptions
from ``codes.json``, which travels with the run); the events' attributions
are integrated gradients over their embeddings (`medsight.ehr.explain`). Writes
``OUT/timeline.png`` and ``OUT/explanation.json`` (risk, calibrated probability, referral,
the top events with code, description, days before, value and contribution) and prints the
files. `ExplainableRun` is also what the evaluation report draws its timelines and global
code importance with.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from torch import nn

from medsight.console import say
from medsight.ehr.data.batches import Inputs, collate
from medsight.ehr.data.encoded_samples import EncodedSamples
from medsight.ehr.data.plan import PLAN_FILE, EhrPlan, read_ehr_plan
from medsight.ehr.data.sequences import encode_table
from medsight.ehr.explain.code_catalogue import CodeCatalogue, codes_by_index
from medsight.ehr.explain.integrated_gradients import (
    EmbeddedModel,
    baseline_logits,
    event_attributions,
)
from medsight.ehr.explain.timeline_figure import TimelineEvent, timeline_figure, top_events
from medsight.ehr.tasks.risk_calibration import RiskCalibration
from medsight.ehr.tasks.risk_codes import CODES_FILE
from medsight.ehr.tasks.risk_contract import RiskContract, read_contract
from medsight.ehr.tasks.risk_data import CACHE_DIR
from medsight.ehr.tasks.risk_inputs import read_patient_record
from medsight.ehr.tasks.risk_weights import load_model
from medsight.errors import InputError
from medsight.runs.atomic import atomic_path, write_text_atomic
from medsight.runs.contract import WEIGHTS
from medsight.runs.ensemble import ensemble_members
from medsight.tasks.options import ExplainOptions

IG_STEPS = 32
TOP_EVENTS = 10


def find_samples(run_dir: Path) -> Path | None:
    """The run's encoded-samples cache (``RUN/cache/encoded-<key>/``), or None."""
    found = sorted((Path(run_dir) / CACHE_DIR).glob("encoded-*"))
    return next((path for path in found if path.is_dir()), None)


def open_samples(path: Path) -> EncodedSamples:
    """Open encoded samples saved as a folder (memory-mapped) or as one ``.npz``."""
    if path.is_dir():
        return EncodedSamples.open_folder(path)
    return EncodedSamples.load(path)


@dataclass
class ExplainableRun:
    """A risk run's primary model with what is needed to explain it."""

    run_dir: Path
    contract: RiskContract
    plan: EhrPlan
    model: nn.Module
    model_name: str
    codes: list[str]
    catalogue: CodeCatalogue
    calibration: RiskCalibration | None

    @classmethod
    def load(cls, run_dir: Path) -> ExplainableRun:
        """Rebuild the run's primary model in eval mode, with its plan and calibration.

        Raises:
            InputError: the run lacks its contract, plan or weights, or they disagree.
        """
        run_dir = Path(run_dir)
        if ensemble_members(run_dir):
            raise InputError(f"{run_dir}: a cross-validation run; explain one of its fold folders")
        contract = read_contract(run_dir)
        plan = read_ehr_plan(run_dir / PLAN_FILE)
        name = contract.model_name
        model = load_model(name, plan.model, run_dir / WEIGHTS)
        try:
            calibration: RiskCalibration | None = RiskCalibration.load(run_dir)
        except InputError:
            calibration = None
        return cls(
            run_dir=run_dir,
            contract=contract,
            plan=plan,
            model=model,
            model_name=name,
            codes=codes_by_index(plan.vocabulary),
            catalogue=CodeCatalogue.from_json(run_dir / CODES_FILE)
            or CodeCatalogue.from_meds(contract.data or None),
            calibration=calibration,
        )

    def events(
        self, samples: EncodedSamples, index: int, attributions: np.ndarray
    ) -> list[TimelineEvent]:
        """Sample ``index``'s events with their attributions (``collate`` keeps their order)."""
        span = samples.events(index)
        code_index = np.asarray(samples.code[span], dtype=np.int64)
        raw = np.asarray(samples.raw_value[span], dtype=np.float64)
        hours = np.asarray(samples.hours_before[span], dtype=np.float64)
        out = []
        for j, idx in enumerate(code_index):
            code = self.codes[int(idx)] if 0 <= idx < len(self.codes) else self.codes[1]
            value = float(raw[j]) if math.isfinite(raw[j]) else None
            out.append(
                TimelineEvent(
                    code=code,
                    description=self.catalogue.description(code),
                    days_before=float(hours[j]) / 24.0,
                    value=value,
                    unit=self.catalogue.unit(code) if value is not None else None,
                    contribution=float(attributions[j]),
                )
            )
        return out

    def explain(
        self, samples: EncodedSamples, index: int, steps: int = IG_STEPS, n_top: int = TOP_EVENTS
    ) -> tuple[dict[str, Any], bytes]:
        """The explanation record and timeline PNG of sample ``index``."""
        batch: Inputs = collate(samples, np.array([index]))
        model = cast(EmbeddedModel, self.model)
        attributions = event_attributions(model, batch, steps=steps)[0].numpy()
        logits, baseline = baseline_logits(model, batch)
        logit = float(logits[0])
        risk = 1.0 / (1.0 + math.exp(-logit))
        probability = referral = None
        if self.calibration is not None:
            probability = float(self.calibration.calibrate(np.array([risk]))[0])
            referral = bool(self.calibration.refer(np.array([probability]))[0])
        events = self.events(samples, index, attributions[: int(samples.lengths()[index])])
        png = timeline_figure(events, risk, probability, title=f"{self.model_name}")
        record = {
            "model": self.model_name,
            "prediction_time": str(np.datetime_as_string(samples.prediction_time[index], "s")),
            "risk": risk,
            "calibrated_probability": probability,
            "flagged": (
                None
                if probability is None or self.calibration is None
                else bool(probability >= self.calibration.threshold)
            ),
            "referral": referral,
            "calibration_note": self.calibration.note() if self.calibration else None,
            "method": f"integrated gradients over event embeddings ({steps} steps, zero "
            "baseline); contributions are in logit units, positive raised the risk",
            "logit": logit,
            "baseline_logit": float(baseline[0]),
            "sum_of_contributions": float(attributions.sum()),
            "n_events": len(events),
            "top_events": [
                {
                    "code": e.code,
                    "description": e.description,
                    "days_before": round(e.days_before, 3),
                    "value": e.value,
                    "unit": e.unit,
                    "contribution": e.contribution,
                }
                for e in top_events(events, n_top)
            ],
        }
        return record, png


def _subject_sample(samples: EncodedSamples, source: str) -> int:
    """The latest prediction time of subject ``source`` among ``samples``."""
    try:
        subject = int(source)
    except ValueError:
        raise InputError(f"{source}: neither a file nor a subject_id") from None
    rows = np.flatnonzero(np.asarray(samples.subject_id) == subject)
    if rows.size == 0:
        # the subject_id is an identifier: it stays out of the message
        raise InputError("SUBJECT: that subject_id is not among the run's labelled samples")
    return int(rows[np.argmax(np.asarray(samples.prediction_time)[rows])])


def explain_risk(run_dir: Path, source: Path, options: ExplainOptions) -> dict[str, Any]:
    """`medsight explain` for an ehr-risk run: timeline.png and explanation.json in OUT.

    Args:
        run_dir: the risk run.
        source: a subject_id of the run's samples, or a one-patient FHIR Bundle / MEDS rows
            file.
        options: ``out`` is the folder written; ``method`` must be integrated gradients
            (the CLI's default ``gradcam`` is read as "the task's default").

    Returns:
        The explanation record written to ``explanation.json``.

    Raises:
        InputError: the run is incomplete, the subject is unknown or the file unreadable.
    """
    if options.method not in ("gradcam", "integrated-gradients", "ig"):
        raise InputError(
            f"--method {options.method}: ehr-risk explains with integrated gradients only"
        )
    run = ExplainableRun.load(run_dir)
    if Path(source).is_file():
        samples = _record_samples(run, Path(source))
        index = 0
    else:
        found = find_samples(run.run_dir)
        if found is None:
            raise InputError(
                f"{run.run_dir}: keeps no encoded samples; explain a record file instead"
            )
        samples = open_samples(found)
        index = _subject_sample(samples, str(source))
    record, png = run.explain(samples, index)
    record = {"source": Path(source).name if Path(source).is_file() else str(source), **record}
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "timeline.png") as tmp:
        tmp.write_bytes(png)
    timeline = out / "timeline.png"
    explanation = write_text_atomic(out / "explanation.json", json.dumps(record, indent=2) + "\n")
    print(timeline)
    print(explanation)
    say(
        f"risk {record['risk']:.3f}"
        + (
            f", calibrated probability {record['calibrated_probability']:.1%}"
            if record["calibrated_probability"] is not None
            else ""
        )
    )
    return record


def _record_samples(run: ExplainableRun, path: Path) -> EncodedSamples:
    """One patient's record file (FHIR Bundle or MEDS rows), encoded as prediction does.

    The prediction time is the one the record names, else its latest dated event (as
    `medsight predict` and the service choose it).

    Raises:
        InputError: unreadable record, or no dated event to predict at.
    """
    record = read_patient_record(path)
    events = record.events
    moment = record.prediction_time or pc.max(events.column("time")).as_py()
    if moment is None:
        raise InputError(f"{path}: the record has no dated event to predict at")
    subject = events.column("subject_id")[0].as_py() or 0
    sample = pa.table(
        {
            "subject_id": pa.array([subject], pa.int64()),
            "prediction_time": pa.array([moment], pa.timestamp("us")),
        }
    )
    return encode_table(events, sample, run.plan, {}).samples
