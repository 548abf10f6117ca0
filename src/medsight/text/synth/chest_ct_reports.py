"""Chest-CT radiology reports for the synthetic chest-CT cohort, with gold annotations.

One report per case, written from the case's facts (a plain dict: ``case_id, patient_id,
label, size_mm, lobe, character``, optionally ``study_date, age, sex``; see `ChestCtCase`).
Reports vary the way dictated reports do: five layouts (headers on their own line, inline,
no headers, lung/pleura/heart sub-headings, impression first), several phrasings of every
statement, ``mm`` and ``cm`` sizes, lobe names or abbreviations, typos in the words between
entities. Each report also says things the labeller must not take at face value: negated
findings ("No pleural effusion or pneumothorax"), uncertain ones ("possible small
effusion", "cannot exclude"), history ("history of pneumonia"), family ("mother had lung
cancer") and hypothetical ones ("should pneumonia be suspected clinically"). Besides the
nodule (which follows the case), each report draws every incidental finding's state
(present, uncertain, absent or not mentioned: effusions, pneumothorax, cardiomegaly,
atelectasis, consolidation, edema, tubes and lines, ...; `incidental_findings`), and a normal
case mostly does not mention a nodule at all ("The lungs are clear.").

Gold, how it is decided (so that the labels are principled, not whatever a rule says):

* every planted mention is an entity with exact offsets; its assertion values are the
  design's (negation affirmed|negated, certainty certain|uncertain, temporality
  recent|historical|hypothetical, experiencer patient|other). Findings, sizes, devices,
  anatomy (lobes, lungs, heart, chest, "bibasilar"/"bases" as the lung bases) and
  procedures (the exam as named: "CT chest", "PET-CT", "chest radiograph"; a recommended
  one is hypothetical, the prior study historical) are all annotated;
* a mention that describes the current study is ``recent`` even when it compares with a
  prior one ("prior nodule unchanged", "now measures 14 mm"): the nodule is there now.
  ``historical`` is for a past episode ("history of pneumonia", "previously 11 mm",
  the indication's "known nodule" history);
* a report's label per finding (``findings``) comes from its ``recent`` mentions about the
  patient: any certain affirmed mention -> present, else any uncertain one -> uncertain,
  else any negated one -> absent, else "not mentioned". History, family and hypothetical
  mentions do not label the report;
* ``nodule`` is the case's nodule as the report was written from it (``present`` is the
  cohort's truth: normal cases are False even when the report calls a tiny opacity a
  possible nodule), ``size_mm`` the largest dimension as written in this report.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medsight.text.synth.date_formats import format_date
from medsight.text.synth.document_builder import (
    DocumentBuilder,
    GeneratedNote,
    Mention,
    Piece,
    Verbatim,
)
from medsight.text.synth.incidental_findings import (
    IMPLIED_CONGESTION,
    INCIDENTAL_FINDINGS,
    PARENCHYMAL,
    draw_states,
    incidental_statements,
)
from medsight.text.synth.report_labels import findings_from_entities

#: the findings every report labels (radlabels names). The reports also mention air-space
#: opacity and pulmonary vascular congestion, but do not label them: in the radlabels label
#: set they are parents (a consolidation, pneumonia or opacity is an air-space opacity, edema
#: is venous congestion), and the gold here labels what is written, not what it implies
REPORT_FINDINGS = (
    "lung_nodule_or_mass",
    *(f for f in INCIDENTAL_FINDINGS if f not in ("air_space_opacity", IMPLIED_CONGESTION)),
)
LOBES = (
    "right upper lobe",
    "right middle lobe",
    "right lower lobe",
    "left upper lobe",
    "left lower lobe",
)
CHARACTERS = ("calcified", "spiculated", "lobulated", "part-solid", "smooth")
_ABBREVIATION = {
    "right upper lobe": "RUL",
    "right middle lobe": "RML",
    "right lower lobe": "RLL",
    "left upper lobe": "LUL",
    "left lower lobe": "LLL",
}
_CHARACTER_WORDS = {
    "calcified": ("calcified", "densely calcified", "calcified"),
    "spiculated": ("spiculated", "irregular, spiculated", "spiculated"),
    "lobulated": ("lobulated", "lobulated solid", "lobulated"),
    "part-solid": ("part-solid", "part-solid", "partly solid"),
    "smooth": ("smooth", "smoothly marginated", "well-circumscribed"),
}
#: reasons for the exam: (before, symptom or None, after); a symptom is a finding entity
_INDICATIONS = (
    ("Chronic ", "cough", "."),
    ("", "Shortness of breath", "."),
    ("Smoker, screening.", None, ""),
    ("", "Weight loss", "."),
    ("", "Hemoptysis", "."),
    ("", "Chest pain", " on exertion."),
    ("Abnormal ", None, "."),
)


@dataclass(frozen=True)
class ChestCtCase:
    """The facts of one chest-CT case a report is written from.

    Attributes:
        case_id: the cohort's case id (``case_0001``), the report's link to the images.
        patient_id: the patient (several scans share one).
        label: ``normal``, ``benign`` or ``malignant``.
        size_mm: the nodule's diameter (None when normal).
        lobe: one of `LOBES` (None when normal).
        character: one of `CHARACTERS` (None when normal).
        study_date: the scan's date.
        age: the patient's age at the scan, when known.
        sex: ``F`` or ``M``, when known.
    """

    case_id: str
    patient_id: str
    label: str
    size_mm: float | None
    lobe: str | None
    character: str | None
    study_date: dt.date
    age: int | None = None
    sex: str | None = None

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> ChestCtCase:
        """Read a case dict (``study_date`` an ISO date string or a date; default 2020-01-01).

        Raises:
            ValueError: a missing key or a value outside its vocabulary (label, lobe,
                character), naming the case and field.
        """
        case_id = str(row.get("case_id", ""))
        for key in ("case_id", "patient_id", "label"):
            if not row.get(key):
                raise ValueError(f"case {case_id or '?'}: missing {key}")
        label = str(row["label"])
        if label not in ("normal", "benign", "malignant"):
            raise ValueError(f"case {case_id}: label must be normal, benign or malignant")
        size, lobe, character = row.get("size_mm"), row.get("lobe"), row.get("character")
        if label != "normal":
            if size is None or float(size) <= 0:
                raise ValueError(f"case {case_id}: a {label} case needs size_mm > 0")
            if lobe not in LOBES:
                raise ValueError(f"case {case_id}: lobe must be one of {', '.join(LOBES)}")
            if character not in CHARACTERS:
                raise ValueError(
                    f"case {case_id}: character must be one of {', '.join(CHARACTERS)}"
                )
        date = row.get("study_date") or "2020-01-01"
        if not isinstance(date, dt.date):
            date = dt.date.fromisoformat(str(date)[:10])
        age = row.get("age")
        return cls(
            case_id,
            str(row["patient_id"]),
            label,
            float(size) if label != "normal" and size is not None else None,
            str(lobe) if label != "normal" else None,
            str(character) if label != "normal" else None,
            date,
            int(age) if age not in (None, "") else None,
            str(row["sex"]) if row.get("sex") else None,
        )


def invented_cases(n: int, rng: random.Random) -> list[ChestCtCase]:
    """A cohort of ``n`` cases when none is given: a third each normal, benign, malignant.

    Sizes and characters follow the chest-CT generator's classes (benign 9-16 mm, smooth or
    calcified; malignant 12-30 mm, lobulated, spiculated or part-solid); one patient in
    three has a follow-up scan.
    """
    cases: list[ChestCtCase] = []
    patient = 0
    while len(cases) < n:
        patient += 1
        label = rng.choice(("normal", "benign", "malignant"))
        size = rng.uniform(9, 16) if label == "benign" else rng.uniform(12, 30)
        lobe = rng.choice(LOBES)
        if label == "benign":
            character = "calcified" if rng.random() < 0.55 else "smooth"
        else:
            character = rng.choice(("spiculated", "spiculated", "part-solid", "lobulated"))
        date = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(1500))
        age = rng.randrange(40, 86)
        for scan in range(1 if rng.random() < 0.67 else 2):
            if len(cases) >= n:
                break
            growth = 1.2**scan if label == "malignant" else 1.0
            cases.append(
                ChestCtCase(
                    f"case_{len(cases) + 1:04d}",
                    f"PAT{patient:05d}",
                    label,
                    size * growth if label != "normal" else None,
                    lobe if label != "normal" else None,
                    character if label != "normal" else None,
                    date + dt.timedelta(days=240 * scan),
                    age,
                    rng.choice("FM"),
                )
            )
    return cases


def chest_ct_reports(
    cases: Sequence[ChestCtCase], seed: int, typo_rate: float = 0.012
) -> Iterator[GeneratedNote]:
    """One report per case (the design's ``radiology.jsonl`` lines), in case order.

    Each report has its own random source (from ``seed`` and the case id), so a report does
    not change when cases are added to the cohort.
    """
    previous: dict[str, ChestCtCase] = {}
    for case in cases:
        rng = random.Random(f"{seed}:radiology:{case.case_id}")
        prior = previous.get(case.patient_id)
        yield _report(case, prior, rng, typo_rate)
        previous[case.patient_id] = case


def _measurement(size_mm: float, rng: random.Random) -> tuple[str, float]:
    """A written size and its value in mm: ``14 mm``, ``1.4 cm`` or ``14 x 11 mm``."""
    style = rng.random()
    if style < 0.45:
        value = float(round(size_mm))
        return f"{int(value)} mm", value
    if style < 0.75:
        cm = round(size_mm / 10, 1)
        return f"{cm:.1f} cm", round(cm * 10, 1)
    value = float(round(size_mm))
    other = max(2, int(value * rng.uniform(0.7, 0.95)))
    return f"{int(value)} x {other} mm", value


def _anatomy(text: str, concept: str | None = None) -> Mention:
    return Mention(text, "anatomy", concept or text.lower())


def _procedure(text: str, concept: str | None = None, **context: Any) -> Mention:
    """A procedure; recommended ones are hypothetical unless ``context`` says otherwise."""
    return Mention(
        text, "procedure", concept or text.lower(), **{"temporality": "hypothetical", **context}
    )


def _one(rng: random.Random, *options: list[Piece]) -> list[Piece]:
    """One of ``options`` (statements, as lists of pieces)."""
    return rng.choice(options)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _lobe_text(lobe: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.1:
        return _ABBREVIATION[lobe]
    if lobe == "left upper lobe" and roll < 0.25:
        return "lingula"
    return lobe


class _Report:
    """The statements of one report, grouped by section, before layout."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sections: dict[str, list[list[Piece]]] = {
            name: [] for name in ("history", "comparison", "technique", "findings", "impression")
        }
        #: the findings-section statements grouped by sub-heading (lungs/pleura/heart/bones)
        self.groups: dict[str, list[list[Piece]]] = {
            "Lungs": [],
            "Pleura": [],
            "Heart and mediastinum": [],
            "Bones": [],
        }
        self.used: set[str] = set()
        #: each incidental finding's state in this report (`incidental_findings.draw_states`)
        self.states: dict[str, str] = draw_states(rng)


def _nodule_statements(
    report: _Report, case: ChestCtCase, prior: ChestCtCase | None
) -> tuple[float | None, list[Piece]]:
    """The findings sentence about the nodule; returns (size as written, impression pieces)."""
    rng = report.rng
    assert case.size_mm is not None and case.lobe is not None and case.character is not None
    written, value = _measurement(case.size_mm, rng)
    character = rng.choice(_CHARACTER_WORDS[case.character])
    noun = (
        "mass"
        if value >= 30 and rng.random() < 0.7
        else rng.choice(("nodule", "nodule", "pulmonary nodule"))
    )
    lobe = _lobe_text(case.lobe, rng)
    nodule = Mention(noun, "finding", "lung_nodule_or_mass", value_mm=value)
    size = Mention(written, "measurement", "size", value_mm=value)
    where = Mention(lobe, "anatomy", case.lobe)
    report.used.add("lung_nodule_or_mass")
    if prior is not None and prior.size_mm is not None:
        prior_written, prior_value = _measurement(prior.size_mm, rng)
        before = Mention(
            prior_written, "measurement", "size", temporality="historical", value_mm=prior_value
        )
        grown = value > prior_value + 1
        if grown:
            options: list[list[Piece]] = [
                [
                    "The ",
                    Verbatim(character),
                    " ",
                    nodule,
                    " in the ",
                    where,
                    " has grown, now measuring ",
                    size,
                    " (previously ",
                    before,
                    ").",
                ],
                [
                    "Interval growth of the ",
                    Verbatim(character),
                    " ",
                    nodule,
                    " in the ",
                    where,
                    ": ",
                    size,
                    ", previously ",
                    before,
                    ".",
                ],
            ]
        else:
            options = [
                [
                    "Prior ",
                    nodule,
                    " unchanged: ",
                    size,
                    " ",
                    Verbatim(character),
                    ", ",
                    where,
                    ".",
                ],
                [
                    "The ",
                    Verbatim(character),
                    " ",
                    nodule,
                    " in the ",
                    where,
                    " is stable at ",
                    size,
                    " (previously ",
                    before,
                    ").",
                ],
                [
                    "Stable ",
                    Verbatim(character),
                    " ",
                    nodule,
                    " in the ",
                    where,
                    " measuring ",
                    size,
                    ", unchanged since the prior study.",
                ],
            ]
    else:
        options = [
            ["There is a ", size, " ", Verbatim(character), " ", nodule, " in the ", where, "."],
            [size, " ", Verbatim(character), " ", nodule, " in the ", where, "."],
            [
                f"{_article(character).capitalize()} ",
                Verbatim(character),
                " ",
                nodule,
                " measuring ",
                size,
                " is seen in the ",
                where,
                ".",
            ],
            [
                "In the ",
                where,
                f" there is {_article(character)} ",
                Verbatim(character),
                " ",
                nodule,
                " measuring ",
                size,
                ".",
            ],
        ]
    report.groups["Lungs"].append(rng.choice(options))
    # the impression repeats it in a shorter form
    again = Mention(
        rng.choice(("nodule", "nodule", noun)), "finding", "lung_nodule_or_mass", value_mm=value
    )
    where2 = Mention(
        case.lobe if rng.random() < 0.8 else _lobe_text(case.lobe, rng), "anatomy", case.lobe
    )
    size2 = Mention(written, "measurement", "size", value_mm=value)
    if case.label == "malignant":
        tail: list[Piece] = [
            rng.choice((", suspicious for ", ", concerning for ", ", worrisome for ")),
            Mention("malignancy", "finding", "malignancy", certainty="uncertain"),
            ". ",
            *_one(
                rng,
                [
                    "Recommend ",
                    _procedure("PET-CT"),
                    " and ",
                    _procedure("tissue sampling"),
                    ".",
                ],
                [_procedure("Tissue sampling"), " is recommended."],
                ["Multidisciplinary review recommended."],
            ),
        ]
    elif case.character == "calcified":
        tail = [
            rng.choice(
                (
                    ", consistent with a granuloma. No follow-up needed.",
                    ", benign pattern of calcification.",
                    ", likely an old granuloma.",
                )
            )
        ]
    else:
        tail = _one(
            rng,
            [
                ", probably benign. ",
                _procedure("Follow-up CT"),
                " in 6-12 months per Fleischner.",
            ],
            [". ", _procedure("Follow-up CT"), " in 6 months is suggested."],
            [", likely benign given smooth margins."],
        )
    impression: list[Piece] = [
        size2,
        " ",
        Verbatim(case.character),
        " ",
        again,
        " in the ",
        where2,
        *tail,
    ]
    return value, impression


def _normal_lung_statement(report: _Report, case: ChestCtCase) -> None:
    """A normal case: the nodule mostly unmentioned ("The lungs are clear.", or nothing when the
    lungs have other findings), else negated ("No pulmonary nodules.") or a possible tiny one."""
    rng = report.rng
    roll = rng.random()
    if roll < 0.35:
        report.used.add("lung_nodule_or_mass")
        nodule = Mention(
            rng.choice(("pulmonary nodule", "nodules", "pulmonary nodules", "nodule")),
            "finding",
            "lung_nodule_or_mass",
            negation="negated",
        )
        report.groups["Lungs"].append(
            _one(
                rng,
                ["No suspicious ", nodule, "."],
                [
                    "No ",
                    nodule,
                    " or ",
                    Mention("masses", "finding", "lung_nodule_or_mass", negation="negated"),
                    " are identified.",
                ],
                ["The ", _anatomy("lungs", "lung"), " are clear without ", nodule, "."]
                if all(report.states[c] in ("absent", "not mentioned") for c in PARENCHYMAL)
                else ["No ", nodule, " are seen." if nodule.text.endswith("s") else " is seen."],
                ["There is no ", nodule, "."]
                if not nodule.text.endswith("s")
                else ["There are no ", nodule, "."],
            )
        )
    elif roll < 0.88:
        clear = all(report.states[c] in ("absent", "not mentioned") for c in PARENCHYMAL)
        if clear and rng.random() < 0.7:
            report.groups["Lungs"].append(
                _one(
                    rng,
                    ["The ", _anatomy("lungs", "lung"), " are clear."],
                    [_anatomy("Lungs", "lung"), " are clear."],
                    ["The ", _anatomy("lungs", "lung"), " are well expanded and clear."],
                )
            )
    else:
        report.used.add("lung_nodule_or_mass")
        lobe = rng.choice(LOBES)
        tiny = rng.choice((2, 3))
        report.groups["Lungs"].append(
            [
                rng.choice(("Possible tiny ", "Questionable ")),
                Mention(f"{tiny} mm", "measurement", "size", value_mm=float(tiny)),
                " ",
                Mention(
                    "nodule",
                    "finding",
                    "lung_nodule_or_mass",
                    certainty="uncertain",
                    value_mm=float(tiny),
                ),
                " in the ",
                Mention(lobe, "anatomy", lobe),
                ", which may be a vessel seen end-on.",
            ]
        )


def _history(report: _Report, case: ChestCtCase, prior: ChestCtCase | None) -> None:
    """Indication, history (past and family) and, sometimes, a hypothetical statement."""
    rng = report.rng
    history = report.sections["history"]
    if prior is not None and prior.lobe is not None:
        history.append(
            [
                rng.choice(("Follow-up of known ", "History of ")),
                Mention(prior.lobe, "anatomy", prior.lobe),
                " ",
                Mention("nodule", "finding", "lung_nodule_or_mass", temporality="historical"),
                ".",
            ]
        )
    else:
        before, symptom, after = rng.choice(_INDICATIONS)
        if symptom is None and before == "Abnormal ":
            history.append(
                [before, _procedure("chest radiograph", "radiograph", temporality="recent"), after]
            )
        elif symptom is None:
            history.append([before])
        else:
            history.append([before, Mention(symptom, "finding", symptom.lower()), after])
    roll = rng.random()
    if roll < 0.3:
        history.append(
            [
                rng.choice(("History of ", "Prior history of ", "Remote history of ")),
                Mention("pneumonia", "finding", "pneumonia", temporality="historical"),
                ".",
            ]
        )
    elif roll < 0.4:
        history.append(
            [
                "Remote history of ",
                Mention("pneumothorax", "finding", "pneumothorax", temporality="historical"),
                ".",
            ]
        )
    roll = rng.random()
    if roll < 0.25:
        history.append(
            [
                rng.choice(
                    (
                        "Mother had ",
                        "Father had ",
                        "Sister with ",
                        "Brother died of ",
                        "Father was treated for ",
                        "Maternal uncle with ",
                    )
                ),
                Mention("lung cancer", "finding", "lung cancer", experiencer="other"),
                rng.choice(
                    (
                        ".",
                        " at age 60.",
                        ", diagnosed in his fifties.",
                        "; patient is a former smoker.",
                    )
                ),
            ]
        )
    elif roll < 0.35:
        history.append(
            [
                "Family history of ",
                Mention("lung cancer", "finding", "lung cancer", experiencer="other"),
                " in a brother.",
            ]
        )
    elif roll < 0.4:
        history.append(
            ["Father with ", Mention("emphysema", "finding", "emphysema", experiencer="other"), "."]
        )
    if rng.random() < 0.2 and report.states["pneumonia"] == "not mentioned":
        hypothetical = Mention("pneumonia", "finding", "pneumonia", temporality="hypothetical")
        report.sections["impression"].append(
            [
                *_one(
                    rng,
                    [
                        "Should ",
                        hypothetical,
                        " be suspected clinically, a ",
                        _procedure("follow-up radiograph"),
                        " is advised.",
                    ],
                    [
                        "If ",
                        hypothetical,
                        " develops, ",
                        _procedure("repeat imaging"),
                        " could be considered.",
                    ],
                ),
            ]
        )


def _report(
    case: ChestCtCase, prior: ChestCtCase | None, rng: random.Random, typo_rate: float
) -> GeneratedNote:
    report = _Report(rng)
    _history(report, case, prior)
    impression: list[Piece] | None = None
    size_written: float | None = None
    if case.label != "normal":
        size_written, impression = _nodule_statements(report, case, prior)
    else:
        _normal_lung_statement(report, case)
    said = incidental_statements(rng, report.states)
    for group, sentences in said.groups.items():
        report.groups[group].extend(sentences)
    if prior is not None:
        report.sections["comparison"].append(
            [
                _procedure("CT chest", "ct", temporality="historical"),
                " of ",
                format_date(prior.study_date, rng),
                ".",
            ]
        )
    else:
        report.sections["comparison"].append(
            [rng.choice(("None.", "None available.", "No prior imaging."))]
        )
    report.sections["technique"].append(
        _one(
            rng,
            [
                "Axial images of the ",
                _anatomy("chest"),
                " were obtained without intravenous contrast.",
            ],
            [
                "Helical acquisition through the ",
                _anatomy("chest"),
                " after intravenous contrast.",
            ],
            [
                _procedure("Low-dose CT", "ct", temporality="recent"),
                " of the ",
                _anatomy("chest"),
                " without contrast; coronal and sagittal reformats.",
            ],
        )
    )
    report.sections["impression"][:0] = said.impression
    if impression is not None:
        report.sections["impression"].insert(0, impression)
    elif not said.impression:
        report.sections["impression"].insert(
            0,
            [
                rng.choice(
                    (
                        "No acute cardiopulmonary abnormality.",
                        "No suspicious pulmonary findings.",
                        "Unremarkable CT of the chest.",
                    )
                )
            ],
        )
    builder = DocumentBuilder(rng, typo_rate if rng.random() < 0.6 else 0.0)
    _layout(builder, report, rng)
    text = builder.build()
    entities = [e.to_json() for e in builder.entities]
    time = dt.datetime.combine(case.study_date, dt.time(rng.randrange(7, 19), rng.randrange(60)))
    record = {
        "note_id": f"rad_{case.case_id}",
        "subject_id": case.patient_id,
        "case_id": case.case_id,
        "time": time.isoformat(),
        "kind": "radiology",
        "text": text,
        "entities": entities,
        "findings": findings_from_entities(entities, REPORT_FINDINGS),
        "nodule": {
            "present": case.label != "normal",
            "size_mm": size_written,
            "lobe": case.lobe,
            "character": case.character,
        },
    }
    return GeneratedNote(record, builder.sentences)


_HEADERS = {
    "history": ("INDICATION", "CLINICAL HISTORY", "REASON FOR EXAM", "History", "Indication"),
    "comparison": ("COMPARISON", "Comparison", "PRIOR STUDIES"),
    "technique": ("TECHNIQUE", "Technique", "PROTOCOL"),
    "findings": ("FINDINGS", "Findings", "FINDINGS"),
    "impression": ("IMPRESSION", "Impression", "CONCLUSION", "SUMMARY", "IMPRESSION"),
}
_TITLES: tuple[list[Piece], ...] = (
    [Mention("CT CHEST", "procedure", "ct"), " WITHOUT CONTRAST"],
    [Mention("CT THORAX", "procedure", "ct")],
    ["EXAMINATION: ", Mention("CT chest", "procedure", "ct")],
    [Mention("CT CHEST", "procedure", "ct")],
    ["FINAL REPORT"],
)
#: the findings' sub-headings (the "subheadings" layout), anatomy words as entities
_GROUP_HEADINGS: dict[str, list[Piece]] = {
    "Lungs": [Mention("Lungs", "anatomy", "lung")],
    "Pleura": [Mention("Pleura", "anatomy", "pleura")],
    "Heart and mediastinum": [
        Mention("Heart", "anatomy", "heart"),
        " and ",
        Mention("mediastinum", "anatomy", "mediastinum"),
    ],
    "Bones": ["Bones"],
}


def _layout(builder: DocumentBuilder, report: _Report, rng: random.Random) -> None:
    """Write the sections in one of five layouts."""
    style = rng.choice(("own_line", "inline", "no_headers", "subheadings", "impression_first"))
    order = ["history", "comparison", "technique", "findings", "impression"]
    if style == "impression_first":
        order = ["impression", "history", "comparison", "findings"]
    elif rng.random() < 0.3:
        order.remove("technique")
    elif rng.random() < 0.2:
        order[1], order[2] = order[2], order[1]
    if rng.random() < 0.7:
        builder.write(*rng.choice(_TITLES))
        builder.text("\n\n", typos=False)
    if not report.groups["Heart and mediastinum"] and rng.random() < 0.5:
        report.groups["Heart and mediastinum"].append(
            [_anatomy("Heart", "heart"), " size is normal."]
        )
    groups = [(name, report.groups[name]) for name in report.groups if report.groups[name]]
    findings = [s for _, sentences in groups for s in sentences]
    numbered = rng.random() < 0.5
    for position, name in enumerate(order):
        sentences = findings if name == "findings" else report.sections[name]
        if not sentences:
            continue
        header = rng.choice(_HEADERS[name])
        if style != "no_headers":
            builder.text(header + (":\n" if style == "own_line" else ": "), typos=False)
        if name == "findings" and style == "subheadings":
            builder.text("\n", typos=False)
            for group, group_sentences in groups:
                builder.write(*_GROUP_HEADINGS[group])
                builder.text(": ", typos=False)
                _sentences(builder, group_sentences, " ")
                builder.text("\n", typos=False)
        elif name == "impression" and numbered and len(sentences) > 1:
            for i, pieces in enumerate(sentences, 1):
                builder.text(f"{i}. ", typos=False)
                builder.sentence(*pieces)
                builder.text("\n", typos=False)
        else:
            _sentences(builder, sentences, " ")
            builder.text("\n", typos=False)
        if position < len(order) - 1:
            builder.text("\n", typos=False)


def _sentences(builder: DocumentBuilder, sentences: list[list[Piece]], between: str) -> None:
    for i, pieces in enumerate(sentences):
        if i:
            builder.text(between, typos=False)
        builder.sentence(*pieces)
