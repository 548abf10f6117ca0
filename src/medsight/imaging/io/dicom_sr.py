"""Write a classification result as a DICOM Structured Report (read back: `dicom_sr_read`).

The report goes back to the hospital PACS, so it is filed in the source's study: same
StudyInstanceUID, the patient and study modules copied from the source, a new series, and
every source instance listed in CurrentRequestedProcedureEvidenceSequence.

Template: a TID 1500 Measurement Report in a Comprehensive SR (1.2.840.10008.5.1.4.1.1.88.33;
nothing here needs 3D coordinates), built with highdicom, so any TID 1500 reader (highdicom,
dcmtk's dsrdump, OHIF) finds its way around it::

    CONTAINER Imaging Measurement Report (TID 1500)
      Language, Observer Type = Device (the model), Procedure Reported (from Modality)
      CONTAINER Image Library (TID 1600): one IMAGE per source instance
      CONTAINER Imaging Measurements
        CONTAINER Measurement Group (TID 1501)
          Tracking Identifier / Tracking Unique Identifier
          CODE  (DCM 121071 Finding) = the predicted class
          TID 4019 Algorithm Identification: name, version, family Artificial Intelligence,
                manufacturer "medsight", parameter "sha256=<model SHA-256>"
          NUM   (DCM 122157 Probability), unit (UCUM 1 "no units"), one per class,
                HAS CONCEPT MOD CODE (99MEDSIGHT CLASS) = that class
          CODE  (99MEDSIGHT CONFORMAL-SET) = SCT Yes/No: was a conformal set computed
          CODE  (99MEDSIGHT CONFORMAL-MEMBER) = a class, one per member of the set
          CODE  (99MEDSIGHT REFER) = SCT Yes/No
          TEXT  (UMLS C0034375 Qualitative Evaluations): the set and referral in words
      CONTAINER (UMLS C0034375 Qualitative Evaluations)
        TEXT  (99MEDSIGHT DISCLAIMER) = `DISCLAIMER`

Standard codes are used where DICOM has one (DCM, SCT, LN, UCUM, UMLS). No standard code
names a model's own classes, a conformal prediction set, a referral flag or a disclaimer,
so those are private codes of the scheme ``99MEDSIGHT`` (declared in
CodingSchemeIdentificationSequence). A class is coded as (name, 99MEDSIGHT, name); a name
longer than a code value may be (16 characters) gets ``H`` + 15 hex digits of its SHA-256
as its value, and keeps the name as its meaning. TID 1500 and 1501 are extensible, which
allows the private items. The report is COMPLETE, PRELIMINARY and UNVERIFIED: a clinician
has not signed it.

Output is deterministic: the UIDs derive from the source series, the source instances and
the result; ContentDate/Time (and SeriesDate/Time) are the source's StudyDate/Time unless
the caller gives one; of the wall-clock times highdicom stamps, InstanceCreationDate/Time
are removed and ContributionDateTime is set to the content date and time. Same inputs,
byte-identical file.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import highdicom as hd
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from medsight import __version__
from medsight.errors import InputError
from medsight.imaging.io.ct_writer import deterministic_uid
from medsight.imaging.io.derived_headers import content_datetime_of, drop_wall_clock, fill_type2
from medsight.imaging.io.dicom_file import read_dicom_header
from medsight.imaging.io.dicom_series import LARGEST, list_series, summarise_series
from medsight.imaging.io.limits import DEFAULT_LIMITS
from medsight.runs.atomic import atomic_path

#: Written into every report (and every heatmap capture): what the result may be used for.
DISCLAIMER = "For research / assistive use only. Not a diagnosis; a clinician must review."

#: Designator of medsight's private coding scheme (the ``99`` prefix marks it private).
PRIVATE_SCHEME = "99MEDSIGHT"

CLASS_CODE = Code("CLASS", PRIVATE_SCHEME, "Classifier output class")
CONFORMAL_SET_CODE = Code("CONFORMAL-SET", PRIVATE_SCHEME, "Conformal prediction set computed")
CONFORMAL_MEMBER_CODE = Code("CONFORMAL-MEMBER", PRIVATE_SCHEME, "Conformal prediction set member")
REFER_CODE = Code("REFER", PRIVATE_SCHEME, "Refer to clinician")
DISCLAIMER_CODE = Code("DISCLAIMER", PRIVATE_SCHEME, "Disclaimer")
_QUALITATIVE = Code("C0034375", "UMLS", "Qualitative Evaluations")
PROBABILITY_CODE: Code = codes.DCM.Probability
_NO_UNITS: Code = codes.UCUM.NoUnits
_PROCEDURES: dict[str, Code] = {
    "CT": codes.cid100.CTUnspecifiedBodyRegion,
    "MR": codes.cid100.MRIUnspecifiedBodyRegion,
    "PT": codes.cid100.PETUnspecifiedBodyRegion,
    "NM": codes.cid100.NMUnspecifiedBodyRegion,
    "CR": codes.cid100.XRUnspecifiedBodyRegion,
    "DX": codes.cid100.XRUnspecifiedBodyRegion,
}

#: Longest value of an LO element (code meanings, AlgorithmName, SeriesDescription).
LO_MAX = 64
#: Longest value of an SH element (code values).
_SH_MAX = 16
#: How far the probabilities may sum from 1 (float32 softmax outputs are within 1e-6).
_SUM_TOLERANCE = 1e-3
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ClassificationFinding:
    """One classifier result on one image series, as the report states it.

    Probabilities are in ``[0, 1]`` and sum to 1 (within 1e-3); their order is the order
    the report lists them in. ``conformal_set`` is None when the model was not calibrated;
    an empty set means no class is plausible at the calibrated coverage. Constructing one
    checks all of this, so a finding that exists can be written.

    Raises:
        InputError: a field DICOM cannot hold or that contradicts another (named in the
            message).
    """

    predicted: str
    probabilities: Mapping[str, float]
    model_name: str
    model_version: str
    model_sha256: str  # 64 lower-case hex digits
    conformal_set: tuple[str, ...] | None = None
    refer: bool = False
    disclaimer: str = field(default=DISCLAIMER, init=False)

    def __post_init__(self) -> None:
        try:
            probabilities = {str(k): float(v) for k, v in dict(self.probabilities).items()}
        except (TypeError, ValueError) as exc:
            raise InputError(
                "classification finding: probabilities must map class names to numbers"
            ) from exc
        if not probabilities:
            raise InputError("classification finding: no class probabilities")
        for name in probabilities:
            check_long_string(name, "class name", "classification finding")
        bad = [n for n, p in probabilities.items() if not (math.isfinite(p) and 0 <= p <= 1)]
        if bad:
            raise InputError(
                f"classification finding: probability of {bad[0]!r} is "
                f"{probabilities[bad[0]]}, not in [0, 1]"
            )
        total = math.fsum(probabilities.values())
        if abs(total - 1.0) > _SUM_TOLERANCE:
            raise InputError(
                f"classification finding: probabilities sum to {total:.6g}, not 1 "
                f"(within {_SUM_TOLERANCE:g})"
            )
        if self.predicted not in probabilities:
            raise InputError(
                f"classification finding: predicted class {self.predicted!r} has no probability"
            )
        check_long_string(self.model_name, "model name", "classification finding")
        check_long_string(self.model_version, "model version", "classification finding")
        if not isinstance(self.model_sha256, str) or not _SHA256.fullmatch(self.model_sha256):
            raise InputError(
                "classification finding: model SHA-256 must be 64 lower-case hex digits"
            )
        if isinstance(self.conformal_set, str):
            raise InputError("classification finding: conformal set must be a list of classes")
        conformal = None if self.conformal_set is None else tuple(self.conformal_set)
        if conformal is not None:
            unknown = [c for c in conformal if c not in probabilities]
            if unknown:
                raise InputError(
                    f"classification finding: conformal set class {unknown[0]!r} has no probability"
                )
            if len(set(conformal)) != len(conformal):
                raise InputError("classification finding: conformal set repeats a class")
        object.__setattr__(self, "probabilities", MappingProxyType(probabilities))
        object.__setattr__(self, "conformal_set", conformal)
        object.__setattr__(self, "refer", bool(self.refer))

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> ClassificationFinding:
        """The finding of a classification result record (as `medsight.serve` returns it).

        Args:
            result: holds ``predicted``, ``probabilities`` and ``model`` (``name``,
                ``version``, ``sha256``), and ``conformal_set`` and ``refer`` when the
                model was calibrated.

        Raises:
            InputError: a field is missing or invalid.
        """
        try:
            model = result["model"]
            return cls(
                predicted=str(result["predicted"]),
                probabilities=result["probabilities"],
                model_name=str(model["name"]),
                model_version=str(model["version"]),
                model_sha256=str(model["sha256"]),
                conformal_set=result.get("conformal_set"),
                refer=bool(result.get("refer", False)),
            )
        except (KeyError, TypeError) as exc:
            raise InputError(f"classification result: missing or invalid field {exc}") from exc


def check_long_string(value: str, what: str, where: object) -> None:
    """Check that ``value`` fits an LO element: 1 to 64 printable characters, no backslash.

    Raises:
        InputError: it does not; the message names ``where`` and ``what``.
    """
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > LO_MAX
        or "\\" in value
        or not value.isprintable()
    ):
        raise InputError(
            f"{where}: {what} {value!r} must be 1 to {LO_MAX} printable characters, no '\\'"
        )


def class_code(name: str) -> Code:
    """The private code of class ``name``: its name as value where it fits, else a hash."""
    value = name if len(name) <= _SH_MAX else "H" + hashlib.sha256(name.encode()).hexdigest()[:15]
    return Code(value, PRIVATE_SCHEME, name)


def source_headers(source: Path, series: str | None = None) -> list[Dataset]:
    """Headers (no pixel data) of every instance of the series at ``source``.

    Args:
        source: one DICOM image file, or a folder searched recursively.
        series: for a folder holding several series, the SeriesInstanceUID to use, or
            ``"largest"``; None requires exactly one.

    Returns:
        One dataset per SOP instance (duplicates dropped), ordered by InstanceNumber, then
        SOPInstanceUID, whatever the files are called.

    Raises:
        InputError: ``source`` is missing, holds no DICOM image, holds several series and
            ``series`` does not pick one, or a file cannot be read.
    """
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    if source.is_file():
        files = [source]
    else:
        groups = list_series(source)
        if not groups:
            raise InputError(f"{source}: no DICOM image files in this folder")
        if series == LARGEST:
            series = summarise_series(source)[0].series_uid
        if series is None:
            if len(groups) > 1:
                raise InputError(
                    f"{source}: folder holds {len(groups)} series; pass a folder with one "
                    "series, or choose one by SeriesInstanceUID or 'largest'"
                )
            (files,) = groups.values()
        elif series in groups:
            files = groups[series]
        else:
            raise InputError(f"{source}: no series with SeriesInstanceUID {series}")
    headers: dict[str, Dataset] = {}
    for path in sorted(files):
        header = read_dicom_header(path, DEFAULT_LIMITS)
        if header is None:
            raise InputError(f"{path}: not a DICOM file")
        if header.pixel_keyword is None:
            raise InputError(f"{path}: DICOM file holds no image (no PixelData)")
        ds = header.dataset
        for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            if not str(ds.get(keyword, "") or ""):
                raise InputError(f"{path}: missing {keyword}")
        headers.setdefault(str(ds.SOPInstanceUID), ds)
    for ds in headers.values():
        fill_type2(ds)
    return sorted(headers.values(), key=lambda ds: (_instance_number(ds), ds.SOPInstanceUID))


def _instance_number(ds: Dataset) -> int:
    try:
        return int(ds.get("InstanceNumber", 0) or 0)
    except (TypeError, ValueError):
        return 0


def write_classification_sr(
    source: Path,
    result: ClassificationFinding,
    out: Path,
    *,
    series: str | None = None,
    series_description: str = "medsight classification",
    series_number: int = 902,
    content_datetime: datetime.datetime | None = None,
) -> Path:
    """Write ``result`` as a Comprehensive SR (TID 1500) in the study of ``source``.

    Args:
        source: the DICOM file or series folder the result was computed from.
        result: the finding, probabilities, conformal set, referral and model identity.
        out: the SR file to write (replaced whole, never left half-written).
        series: for a folder holding several series, the SeriesInstanceUID that was
            classified (or ``"largest"``).
        series_description: SeriesDescription of the new SR series.
        series_number: SeriesNumber of the new SR series.
        content_datetime: ContentDate/Time of the report; None takes the source's study
            date and time, which keeps the output a function of its inputs.

    Returns:
        ``out``.

    Raises:
        InputError: ``source`` cannot be read or holds no DICOM image (see
            `source_headers`), has no date and none is given, the description or series
            number does not fit DICOM, or highdicom refuses the source (its message's
            first line is kept). Nothing is written then.
    """
    source, out = Path(source), Path(out)
    if not isinstance(result, ClassificationFinding):
        raise InputError(f"{out}: result must be a ClassificationFinding")
    check_long_string(series_description, "series description", out)
    if not 1 <= series_number < 2**31:
        raise InputError(f"{out}: series number {series_number} is not in 1..2^31-1")
    headers = source_headers(source, series)
    day, time = content_datetime_of(headers[0], content_datetime, source)
    instance_uids = [str(ds.SOPInstanceUID) for ds in headers]
    digest = hashlib.sha256()
    digest.update(repr(_finding_key(result)).encode())
    digest.update(repr((series_description, series_number, day, time)).encode())
    digest.update(repr(instance_uids).encode())
    source_series = str(headers[0].SeriesInstanceUID)
    series_uid = deterministic_uid("medsight-sr", source_series, digest.hexdigest())
    try:
        report = _measurement_report(headers, result, series_uid)
        sr = hd.sr.ComprehensiveSR(
            evidence=headers,
            content=report,
            series_instance_uid=series_uid,
            series_number=series_number,
            sop_instance_uid=deterministic_uid(series_uid, "instance"),
            instance_number=1,
            manufacturer="medsight",
            is_complete=True,
            is_final=False,
            is_verified=False,
            series_description=series_description,
            manufacturer_model_name="medsight",
            software_versions=__version__,
            content_date=day,
            content_time=time,
            series_date=day,
            series_time=time,
            coding_schemes=[
                CodingSchemeIdentificationItem(
                    designator=PRIVATE_SCHEME,
                    name="medsight private codes",
                    responsible_organization="medsight",
                )
            ],
        )
    except (ValueError, TypeError, AttributeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{source}: highdicom cannot encode an SR for this image: {reason}"
        ) from exc
    drop_wall_clock(sr, day, time)
    with atomic_path(out) as tmp:
        sr.save_as(tmp, enforce_file_format=True)
    return out


def _finding_key(result: ClassificationFinding) -> tuple[object, ...]:
    return (
        result.predicted,
        list(result.probabilities.items()),
        result.model_name,
        result.model_version,
        result.model_sha256,
        result.conformal_set,
        result.refer,
        result.disclaimer,
    )


def _measurement_report(
    headers: list[Dataset], result: ClassificationFinding, series_uid: str
) -> hd.sr.MeasurementReport:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=deterministic_uid("medsight-device", result.model_name, result.model_sha256),
        name=result.model_name,
        manufacturer_name="medsight",
        model_name=result.model_name,
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )
    algorithm = hd.sr.AlgorithmIdentification(
        name=result.model_name,
        version=result.model_version,
        parameters=[f"sha256={result.model_sha256}"],
        family=codes.cid7162.ArtificialIntelligence,
        manufacturer="medsight",
    )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=deterministic_uid(series_uid, "tracking"), identifier="medsight classification"
        ),
        finding_type=class_code(result.predicted),
        algorithm_id=algorithm,
        measurements=[_probability(name, p) for name, p in result.probabilities.items()],
        qualitative_evaluations=_evaluations(result),
    )
    group[0].ContentSequence.append(
        hd.sr.TextContentItem(
            name=_QUALITATIVE,
            value=_statement(result),
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
    )
    modality = str(headers[0].get("Modality", "") or "")
    procedure = _PROCEDURES.get(modality, codes.cid100.ImagingProcedure)
    try:
        report = hd.sr.MeasurementReport(
            observation_context=context,
            procedure_reported=procedure,
            imaging_measurements=[group],
            referenced_images=headers,
        )
    except (AttributeError, KeyError, ValueError):
        # The image library needs per-image geometry (PixelSpacing, SliceThickness, ...)
        # that some sources (enhanced multi-frame, de-identified) lack; it is optional, and
        # the evidence sequence still references every source instance.
        report = hd.sr.MeasurementReport(
            observation_context=context,
            procedure_reported=procedure,
            imaging_measurements=[group],
        )
    disclaimer = hd.sr.ContainerContentItem(
        name=_QUALITATIVE, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    disclaimer.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.TextContentItem(
                name=DISCLAIMER_CODE,
                value=result.disclaimer,
                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
            )
        ]
    )
    report[0].ContentSequence.append(disclaimer)
    return report


def _probability(name: str, probability: float) -> hd.sr.Measurement:
    measurement = hd.sr.Measurement(name=PROBABILITY_CODE, value=probability, unit=_NO_UNITS)
    modifier = hd.sr.CodeContentItem(
        name=CLASS_CODE,
        value=class_code(name),
        relationship_type=hd.sr.RelationshipTypeValues.HAS_CONCEPT_MOD,
    )
    item = measurement[0]
    if "ContentSequence" not in item:
        item.ContentSequence = hd.sr.ContentSequence()
    item.ContentSequence.append(modifier)
    return measurement


def _yes_no(flag: bool) -> Code:
    return codes.SCT.Yes if flag else codes.SCT.No


def _evaluations(result: ClassificationFinding) -> list[hd.sr.QualitativeEvaluation]:
    evaluations = [
        hd.sr.QualitativeEvaluation(CONFORMAL_SET_CODE, _yes_no(result.conformal_set is not None))
    ]
    evaluations += [
        hd.sr.QualitativeEvaluation(CONFORMAL_MEMBER_CODE, class_code(name))
        for name in result.conformal_set or ()
    ]
    evaluations.append(hd.sr.QualitativeEvaluation(REFER_CODE, _yes_no(result.refer)))
    return evaluations


def _statement(result: ClassificationFinding) -> str:
    if result.conformal_set is None:
        conformal = "No conformal prediction set (the model is not calibrated)."
    elif not result.conformal_set:
        conformal = "Conformal prediction set: empty (no class is plausible)."
    else:
        conformal = f"Conformal prediction set: {', '.join(result.conformal_set)}."
    if result.refer:
        return f"{conformal} Refer: the model abstains; a clinician must decide."
    return f"{conformal} Not referred."
