"""Predicting with a risk run: calibrated risk, referral and the events behind the score.

`LoadedRisk` is the run loaded once (the service's `LoadedRun`): it encodes one patient's
record at a prediction time (the record's latest event unless given) exactly as training
encoded samples (the plan's vocabulary, statistics and history window: nothing after the
prediction time), scores it with the primary model (or the mean of a K-fold ensemble),
applies ``calibration.json`` and attributes the logit to the events (integrated gradients
over event embeddings). `predict_risk` is ``medsight predict`` (a table or ``--json``).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from rich.table import Table
from torch import nn

from medsight.console import console
from medsight.ehr.data.batches import collate
from medsight.ehr.data.plan import PLAN_FILE, EhrPlan, read_ehr_plan
from medsight.ehr.data.sequences import encode_table
from medsight.ehr.tasks.risk_calibration import CALIBRATION_FILE, RiskCalibration
from medsight.ehr.tasks.risk_codes import read_code_descriptions
from medsight.ehr.tasks.risk_contract import read_contract
from medsight.ehr.tasks.risk_inputs import PatientRecord, read_patient_record
from medsight.ehr.tasks.risk_weights import load_model
from medsight.errors import InputError
from medsight.runs.contract import WEIGHTS
from medsight.runs.ensemble import ensemble_members
from medsight.tasks.options import PredictOptions
from medsight.tasks.results import RiskContribution, RiskResult

#: events listed per result, strongest first
TOP_EVENTS = 10


def attributions(model: nn.Module, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    """Each event's share of the logit ``(N, L)``: integrated gradients over embeddings."""
    from medsight.ehr.explain.integrated_gradients import event_attributions

    return event_attributions(model, inputs).numpy()  # type: ignore[arg-type]


class LoadedRisk:
    """A risk run (or K-fold ensemble) loaded once for the service and the CLI."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        members = ensemble_members(self.folder) or [self.folder]
        self.contract = read_contract(members[0])
        plan_dir = members[0] if (members[0] / PLAN_FILE).is_file() else self.folder
        self.plan: EhrPlan = read_ehr_plan(plan_dir / PLAN_FILE)
        self.models = [
            load_model(read_contract(m).model_name, self.plan.model, m / WEIGHTS) for m in members
        ]
        self.calibration = (
            RiskCalibration.load(self.folder)
            if (self.folder / CALIBRATION_FILE).is_file()
            else None
        )
        self.descriptions = read_code_descriptions(self.folder)

    def is_2d(self) -> bool:
        """True: a record is answered at once, never queued (no 3D volume to wait for)."""
        return True

    def score_record(self, record: PatientRecord, when: datetime | None = None) -> RiskResult:
        """The `RiskResult` of one patient's record at ``when`` (default: its latest event).

        Raises:
            InputError: the record has no dated event to predict at.
        """
        events = record.events
        moment = when or record.prediction_time
        if moment is None:
            latest = pc.max(events.column("time")).as_py()
            if latest is None:
                raise InputError("the record has no dated event to predict at")
            moment = latest
        subject = events.column("subject_id")[0].as_py() or 0
        sample = pa.table(
            {
                "subject_id": pa.array([subject], pa.int64()),
                "prediction_time": pa.array([moment], pa.timestamp("us")),
            }
        )
        encoded = encode_table(events, sample, self.plan, {})
        inputs = collate(encoded.samples, np.array([0]))
        with torch.inference_mode():
            logits = [float(m(inputs)[0]) for m in self.models]
        risk = float(np.mean([1 / (1 + np.exp(-z)) for z in logits]))
        contributions = self._contributions(encoded.events, encoded.rows, inputs)
        if self.calibration is not None:
            probability = float(self.calibration.calibrate(np.array([risk]))[0])
            refer = bool(self.calibration.flag(np.array([probability]))[0])
            uncertain: bool | None = bool(self.calibration.refer(np.array([probability]))[0])
            threshold, note = self.calibration.threshold, self.calibration.note()
        else:
            probability, threshold, uncertain = risk, 0.5, None
            refer = risk >= threshold
            note = "not calibrated (a cross-validation ensemble has no calibration.json)"
        return RiskResult(
            risk=risk,
            probability=probability,
            refer=refer,
            threshold=threshold,
            calibration=note,
            uncertain=uncertain,
            contributions=contributions,
            prediction_time=moment,
            label_definition=self.contract.label_definition or None,
            network=self.contract.model_name,
        )

    def _contributions(
        self, events: pa.Table, rows: np.ndarray, inputs: dict[str, torch.Tensor]
    ) -> list[RiskContribution]:
        if not len(rows):
            return []
        shares = attributions(self.models[0], inputs)[0, : len(rows)]
        codes = events.column("code").take(pa.array(rows)).to_pylist()
        values = events.column("numeric_value").take(pa.array(rows)).to_pylist()
        hours = inputs["hours_before"][0, : len(rows)].numpy()
        order = np.argsort(-np.abs(shares), kind="stable")[:TOP_EVENTS]
        return [
            RiskContribution(
                code=codes[i],
                description=self.descriptions.get(codes[i]),
                hours_before=float(hours[i]),
                value=None if values[i] is None else float(values[i]),
                contribution=float(shares[i]),
            )
            for i in order
        ]

    def predict(self, source: Path, out: Path, heatmap: bool) -> RiskResult:
        """Risk of the one-patient record in ``source`` (MEDS rows parquet/JSON or FHIR)."""
        return self.score_record(read_patient_record(source))


def predict_risk(run_dir: Path, inputs: list[Path], options: PredictOptions) -> None:
    """Score each record; print a table, or JSON with ``options.as_json``.

    Raises:
        InputError: imaging-only options, a missing run, or an unreadable record.
    """
    loaded = LoadedRisk(run_dir)  # first: a missing run names the command that makes it
    if options.out is not None or options.heatmap is not None:
        raise InputError("--out and --heatmap are for imaging runs; use `medsight explain`")
    results = []
    for path in inputs:
        result = loaded.score_record(read_patient_record(path))
        result.input = str(path)
        results.append(result)
    if options.as_json:
        records = [r.to_json() for r in results]
        print(json.dumps(records[0] if len(records) == 1 else records))
        return
    table = Table(title=f"risk predictions of {run_dir} ({loaded.contract.model_name})")
    for column in ("input", "risk", "probability", "refer", "top event"):
        table.add_column(column)
    for r in results:
        top = r.contributions[0] if r.contributions else None
        shown = f"{top.code} ({top.contribution:+.2f})" if top else "-"
        table.add_row(
            str(r.input), f"{r.risk:.3f}", f"{r.probability:.3f}", "yes" if r.refer else "no", shown
        )
    console.print(table)
