"""Result records: one typed schema per task family, read by every consumer of a prediction.

The CLI's ``--json``, the service's job result, the DICOM SR/SEG writers and the viewer all
read these records; ``task`` is the discriminator (the run contract's task name), so a stored
result parses back into its own type with `parse_result`. Fields that are absent stay absent
in JSON (``exclude_none``), as the service's results always were.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class ModelIdentity(BaseModel):
    """The served model version a result came from."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    sha256: str


class _Record(BaseModel):
    # tolerant when reading stored results (highdicom's charter): unknown keys are dropped
    model_config = ConfigDict(extra="ignore")

    #: the input as the caller named it (CLI only: the service never echoes paths)
    input: str | None = None
    #: files written for this input, relative to the result folder (service)
    files: list[str] = []
    model: ModelIdentity | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict (absent fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class ClassificationResult(_Record):
    """Class probabilities for one input, with the conformal set when the run is calibrated."""

    task: Literal["classify"] = "classify"
    predicted: str
    probabilities: dict[str, float]
    #: classes the model cannot rule out at the calibrated coverage; ``refer`` when not one
    conformal_set: list[str] | None = None
    refer: bool | None = None
    #: CLI: the heatmap NIfTI written by ``--heatmap``
    heatmap: str | None = None


class SegmentationResult(_Record):
    """Structures found in one input: volume, components and locations per structure."""

    task: Literal["segment"] = "segment"
    structures: dict[str, Any]
    #: CLI: where this input's files went
    output_dir: str | None = None
    segmentation: str | None = None
    dicom_seg: str | None = None
    overlays: list[str] | None = None


class RiskContribution(BaseModel):
    """One event of the patient's record and how much it moved the risk."""

    model_config = ConfigDict(extra="ignore")

    #: the MEDS code (``LOINC//4548-4``)
    code: str
    #: the code's description from the run's vocabulary, when it has one
    description: str | None = None
    #: how long before the prediction time the event happened (hours, >= 0)
    hours_before: float
    #: the event's numeric value (in the code's unit), when it has one
    value: float | None = None
    #: signed share of the score (positive raises the risk): integrated gradients or attention
    contribution: float


class RiskResult(_Record):
    """A calibrated disease-event risk for one patient's record, with the events behind it."""

    task: Literal["ehr-risk"] = "ehr-risk"
    #: the model's own probability of the event (uncalibrated)
    risk: float
    #: the calibrated probability of the event
    probability: float
    #: referral flag: the calibrated probability reaches the decision threshold
    refer: bool
    #: the decision threshold on the calibrated probability (chosen on tuning patients)
    threshold: float
    #: how the probability was calibrated, one sentence for the result page
    calibration: str
    #: the conformal set is not a single outcome: the model cannot rule either out
    uncertain: bool | None = None
    #: the events that drove the risk, strongest first
    contributions: list[RiskContribution] = []
    #: the time the risk is predicted at (de-identified: shifted with the record's dates)
    prediction_time: dt.datetime | None = None
    #: the label the model predicts, as the run defines it ("death within 30 days", ...)
    label_definition: str | None = None
    #: the network inside the run that scored the record (``gru``, ``transformer``, ...)
    network: str | None = None


class TextEntity(BaseModel):
    """One entity found in a note, with its assertion context (offsets into the note's text)."""

    model_config = ConfigDict(extra="ignore")

    start: int
    end: int
    #: finding | anatomy | medication | procedure | device | measurement (or a PHI type)
    type: str
    #: the normalised concept (``pleural_effusion``), when the entity has one
    concept: str | None = None
    #: the entity's text as it stands in the (de-identified) note
    text: str | None = None
    section: str | None = None
    negation: Literal["affirmed", "negated"] | None = None
    certainty: Literal["certain", "uncertain"] | None = None
    temporality: Literal["recent", "historical", "hypothetical"] | None = None
    experiencer: Literal["patient", "other"] | None = None
    #: a measurement's size in millimetres
    value_mm: float | None = None


class TextLabel(BaseModel):
    """One document label a classifier gave the note (one per output, e.g. per finding)."""

    model_config = ConfigDict(extra="ignore")

    label: str
    probability: float
    probabilities: dict[str, float] = {}


class TextResult(_Record):
    """What a text model found in one note: labels per output, entities with their context."""

    task: Literal["text-classify", "text-ner"]
    #: per output (``sentiment``, ``finding:pleural_effusion``): the predicted label
    labels: dict[str, TextLabel] = {}
    entities: list[TextEntity] = []
    #: section names in order of appearance
    sections: list[str] = []
    #: the note was de-identified before it was stored or predicted (the service always)
    deidentified: bool | None = None
    #: the network that scored it (``cnn``, ``bilstm``, ``transformer``, ``bilstm-crf``)
    network: str | None = None


AnyResult = ClassificationResult | SegmentationResult | RiskResult | TextResult
ResultRecord = Annotated[AnyResult, Field(discriminator="task")]
_ADAPTER: TypeAdapter[AnyResult] = TypeAdapter(ResultRecord)


def parse_result(data: dict[str, Any]) -> AnyResult:
    """The typed record of a stored result (raises pydantic's ValidationError if malformed)."""
    return _ADAPTER.validate_python(data)
