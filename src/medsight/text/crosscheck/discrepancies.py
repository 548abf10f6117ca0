"""The image-vs-report discrepancy list: the cases where the image model and the radiology
report disagree, the list a radiology department reviews for quality.

The image model answers ``normal`` (no nodule), ``benign`` or ``malignant`` (a nodule); the
report says a nodule is present, absent, uncertain or not mentioned, with a size and a
character (`report_finding`). A case is listed when, by these rules, one of the two would
send the patient down a different path:

* **image missed the nodule** (high when the nodule is suspicious, else medium): the report
  says present, the image model normal;
* **nodule not in the report** (medium): the image model says benign or malignant, the
  report absent or not mentioned;
* **suspicious nodule called benign** (high): the report describes a nodule of 15 mm or
  more, or spiculated or part-solid, and the image model says benign;
* **benign-looking nodule called malignant** (medium): the report describes a calcified
  nodule or one under 6 mm, and the image model says malignant;
* **equivocal report** (low): the report is uncertain and the image model sees a nodule.

"Suspicious" and "benign-looking" follow Lung-RADS v2022 for solid nodules: 15 mm or more
is category 4B (work-up); spiculation and a ground-glass component are features that raise
suspicion (4X); a benign pattern of calcification is category 1 and below 6 mm category 2
(routine screening). An uncertain report is not a disagreement on its own: it is listed only
when the image model calls a nodule, since the images could settle it. A report that is
``not mentioned`` and an image ``normal`` agree.

Nothing from the report's text goes into a record: the reasons are written from the labels,
sizes and characters, so the list can be shown where note text may not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from medsight.errors import InputError
from medsight.text.crosscheck.report_finding import ReportFinding

IMAGE_CLASSES = ("normal", "benign", "malignant")
#: Lung-RADS v2022: a solid nodule of 15 mm or more is category 4B
SUSPICIOUS_SIZE_MM = 15.0
#: Lung-RADS v2022: a solid nodule below 6 mm is category 2
SMALL_SIZE_MM = 6.0
SUSPICIOUS_CHARACTERS = ("spiculated", "part-solid")
PRIORITIES = ("high", "medium", "low")


@dataclass(frozen=True)
class ImagePrediction:
    """The image model's answer for one case (and the case's true class, when known)."""

    case_id: str
    predicted: str
    probability: float
    truth: str | None = None

    @classmethod
    def from_dict(cls, case_id: str, row: Mapping[str, Any]) -> ImagePrediction:
        """Read ``{"predicted", "probability"[, "label"]}``.

        Raises:
            InputError: an unknown class or a probability outside [0, 1], naming the case.
        """
        predicted = str(row.get("predicted", ""))
        if predicted not in IMAGE_CLASSES:
            raise InputError(f"prediction {case_id}: predicted must be one of {IMAGE_CLASSES}")
        try:
            probability = float(row.get("probability", float("nan")))
        except (TypeError, ValueError):
            probability = float("nan")
        if not 0.0 <= probability <= 1.0:
            raise InputError(f"prediction {case_id}: probability must be in [0, 1]")
        truth = row.get("label")
        if truth is not None and truth not in IMAGE_CLASSES:
            raise InputError(f"prediction {case_id}: label must be one of {IMAGE_CLASSES}")
        return cls(case_id, predicted, probability, truth)


@dataclass(frozen=True)
class Discrepancy:
    """One case where the image model and the report disagree."""

    case_id: str
    note_id: str
    kind: str
    priority: str
    image: str
    probability: float
    report: str
    size_mm: float | None
    character: str | None
    reason: str
    #: the case's true class, when known, and which side it supports
    truth: str | None = None
    image_right: bool | None = None
    report_right: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _suspicious(finding: ReportFinding) -> list[str]:
    why = []
    if finding.size_mm is not None and finding.size_mm >= SUSPICIOUS_SIZE_MM:
        why.append(f"{finding.size_mm:g} mm (>= {SUSPICIOUS_SIZE_MM:g} mm)")
    if finding.character in SUSPICIOUS_CHARACTERS:
        why.append(str(finding.character))
    return why


def _benign_looking(finding: ReportFinding) -> list[str]:
    why = []
    if finding.character == "calcified":
        why.append("calcified")
    if finding.size_mm is not None and finding.size_mm < SMALL_SIZE_MM:
        why.append(f"{finding.size_mm:g} mm (< {SMALL_SIZE_MM:g} mm)")
    return why


def _describe(finding: ReportFinding) -> str:
    parts = [finding.nodule]
    if finding.size_mm is not None:
        parts.append(f"{finding.size_mm:g} mm")
    if finding.character:
        parts.append(finding.character)
    return ", ".join(parts)


def classify_case(finding: ReportFinding, image: ImagePrediction) -> tuple[str, str, str] | None:
    """``(kind, priority, reason)`` when the two disagree by the module's rules, else None."""
    image_nodule = image.predicted != "normal"
    said = f"report: {_describe(finding)}; image: {image.predicted} ({image.probability:.2f})"
    if finding.nodule == "present" and not image_nodule:
        suspicious = _suspicious(finding)
        priority = "high" if suspicious else "medium"
        return "image missed the nodule", priority, said
    if image_nodule and finding.nodule in ("absent", "not mentioned"):
        return "nodule not in the report", "medium", said
    if finding.nodule == "present" and image.predicted == "benign" and _suspicious(finding):
        return "suspicious nodule called benign", "high", said
    if finding.nodule == "present" and image.predicted == "malignant" and _benign_looking(finding):
        return "benign-looking nodule called malignant", "medium", said
    if finding.nodule == "uncertain" and image_nodule:
        return "equivocal report", "low", said
    return None


def _right(truth: str | None, image: ImagePrediction, finding: ReportFinding) -> tuple[Any, Any]:
    if truth is None:
        return None, None
    nodule = truth != "normal"
    report_right = (
        None if finding.nodule == "uncertain" else (finding.nodule == "present") == nodule
    )
    image_right = image.predicted == truth if nodule else image.predicted == "normal"
    return image_right, report_right


def find_discrepancies(
    findings: Iterable[ReportFinding], predictions: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Discrepancy], dict[str, Any]]:
    """Compare every case that has both a report and an image prediction.

    Args:
        findings: what each report says (`nodule_finding`).
        predictions: ``case_id -> {"predicted": normal|benign|malignant, "probability":
            the predicted class's probability[, "label": the true class]}``.

    Returns:
        The discrepancies (priority high -> low, then the image model's probability, most
        confident first) and a summary: cases compared, reports per nodule label, agreement
        on nodule / no nodule, discrepancies per kind, and cases with only one side.

    Raises:
        InputError: a malformed prediction (see `ImagePrediction.from_dict`).
    """
    images = {cid: ImagePrediction.from_dict(cid, row) for cid, row in predictions.items()}
    found: list[Discrepancy] = []
    compared = agree = decided = 0
    labels: Counter[str] = Counter()
    seen: set[str] = set()
    for finding in findings:
        seen.add(finding.case_id)
        image = images.get(finding.case_id)
        if image is None:
            continue
        compared += 1
        labels[finding.nodule] += 1
        if finding.nodule != "uncertain":
            decided += 1
            agree += (finding.nodule == "present") == (image.predicted != "normal")
        verdict = classify_case(finding, image)
        if verdict is None:
            continue
        kind, priority, reason = verdict
        image_right, report_right = _right(image.truth, image, finding)
        found.append(
            Discrepancy(
                finding.case_id,
                finding.note_id,
                kind,
                priority,
                image.predicted,
                image.probability,
                finding.nodule,
                finding.size_mm,
                finding.character,
                reason,
                image.truth,
                image_right,
                report_right,
            )
        )
    found.sort(key=lambda d: (PRIORITIES.index(d.priority), -d.probability, d.case_id))
    summary = {
        "cases_compared": compared,
        "reports": {
            label: labels[label] for label in ("present", "absent", "uncertain", "not mentioned")
        },  # fmt: skip
        "nodule_agreement": agree / decided if decided else None,
        "discrepancies": len(found),
        "by_kind": dict(Counter(d.kind for d in found)),
        "by_priority": {p: sum(d.priority == p for d in found) for p in PRIORITIES},
        "reports_without_prediction": len(seen - images.keys()),
        "predictions_without_report": len(images.keys() - seen),
    }
    truths = [d for d in found if d.truth is not None]
    if truths:
        summary["image_right"] = sum(bool(d.image_right) for d in truths)
        summary["report_right"] = sum(bool(d.report_right) for d in truths)
    return found, summary
