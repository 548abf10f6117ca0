"""The incidental findings of a synthetic chest-CT report: each finding's state drawn per report.

Every report draws, for each finding below, whether it is present, uncertain, absent (said
to be absent) or not mentioned, with prevalences that depend on the kind of patient: most
are outpatients (few acute findings, often emphysema, aortic calcification, some basilar
atelectasis), some have heart failure (an enlarged heart, effusions, edema, vascular
congestion, sometimes a pacemaker) and some are inpatients in intensive care (tubes and
lines, effusions, atelectasis, consolidation, opacities, now and then a pneumothorax).
Findings that occur together are written together as reports do ("small bilateral pleural
effusions with adjacent atelectasis"; "No pleural effusion or pneumothorax.").

A state is the writer's intent; the gold label is still computed from the entities written
(`report_labels.findings_from_entities`), so the two cannot disagree. Entity spans are the
finding's name as a lexicon of radiology terms would list it ("pleural effusion",
"subsegmental atelectasis", "heart is enlarged"); laterality, size and severity words
("small left", "mild", "bilateral") are filler around them, anatomy (lobes, lung bases,
carina, stomach, SVC) are anatomy entities.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from medsight.text.synth.document_builder import Mention, Piece

#: the findings drawn here (radlabels names), besides the nodule the case decides
INCIDENTAL_FINDINGS = (
    "pleural_effusion",
    "pneumothorax",
    "consolidation",
    "pneumonia",
    "atelectasis",
    "emphysema",
    "cardiomegaly",
    "pulmonary_edema",
    "pulmonary_congestion_pulmonary_venous_congestion",
    "lung_opacity",
    "air_space_opacity",
    "ground_glass_opacity",
    "hilar_lymphadenopathy",
    "calcification_of_the_aorta",
    "hiatus_hernia",
    "fracture_generic",
    "endotracheal_tube",
    "enteric_tube",
    "central_venous_catheter",
    "pacemaker_electronic_cardiac_device_or_wires",
)
#: pulmonary vascular congestion (radlabels' name)
IMPLIED_CONGESTION = "pulmonary_congestion_pulmonary_venous_congestion"
#: findings in the lung parenchyma: "the lungs are clear" is only said without them
PARENCHYMAL = (
    "consolidation",
    "pneumonia",
    "atelectasis",
    "emphysema",
    "pulmonary_edema",
    "lung_opacity",
    "air_space_opacity",
    "ground_glass_opacity",
)
#: (present, uncertain, absent) chances per patient kind; the rest is "not mentioned"
_PREVALENCE: dict[str, dict[str, tuple[float, float, float]]] = {
    "outpatient": {
        "pleural_effusion": (0.08, 0.04, 0.5),
        "pneumothorax": (0.01, 0.01, 0.55),
        "consolidation": (0.04, 0.03, 0.35),
        "pneumonia": (0.02, 0.06, 0.03),
        "atelectasis": (0.2, 0.04, 0.03),
        "emphysema": (0.28, 0.01, 0.08),
        "cardiomegaly": (0.06, 0.0, 0.25),
        "pulmonary_edema": (0.02, 0.02, 0.2),
        "pulmonary_congestion_pulmonary_venous_congestion": (0.01, 0.0, 0.02),
        "lung_opacity": (0.06, 0.01, 0.04),
        "air_space_opacity": (0.02, 0.01, 0.02),
        "ground_glass_opacity": (0.05, 0.0, 0.1),
        "hilar_lymphadenopathy": (0.03, 0.01, 0.3),
        "calcification_of_the_aorta": (0.22, 0.0, 0.0),
        "hiatus_hernia": (0.06, 0.0, 0.0),
        "fracture_generic": (0.0, 0.0, 0.2),
        "endotracheal_tube": (0.0, 0.0, 0.0),
        "enteric_tube": (0.01, 0.0, 0.0),
        "central_venous_catheter": (0.04, 0.0, 0.0),
        "pacemaker_electronic_cardiac_device_or_wires": (0.03, 0.0, 0.0),
    },
    "heart_failure": {
        "pleural_effusion": (0.6, 0.08, 0.2),
        "pneumothorax": (0.0, 0.0, 0.5),
        "consolidation": (0.04, 0.03, 0.3),
        "pneumonia": (0.02, 0.06, 0.03),
        "atelectasis": (0.35, 0.04, 0.02),
        "emphysema": (0.15, 0.0, 0.05),
        "cardiomegaly": (0.75, 0.0, 0.03),
        "pulmonary_edema": (0.5, 0.12, 0.08),
        "pulmonary_congestion_pulmonary_venous_congestion": (0.45, 0.03, 0.05),
        "lung_opacity": (0.08, 0.01, 0.02),
        "air_space_opacity": (0.04, 0.01, 0.02),
        "ground_glass_opacity": (0.06, 0.0, 0.05),
        "hilar_lymphadenopathy": (0.02, 0.0, 0.2),
        "calcification_of_the_aorta": (0.3, 0.0, 0.0),
        "hiatus_hernia": (0.05, 0.0, 0.0),
        "fracture_generic": (0.0, 0.0, 0.15),
        "endotracheal_tube": (0.0, 0.0, 0.0),
        "enteric_tube": (0.02, 0.0, 0.0),
        "central_venous_catheter": (0.1, 0.0, 0.0),
        "pacemaker_electronic_cardiac_device_or_wires": (0.25, 0.0, 0.0),
    },
    "intensive_care": {
        "pleural_effusion": (0.45, 0.08, 0.3),
        "pneumothorax": (0.12, 0.03, 0.6),
        "consolidation": (0.25, 0.06, 0.2),
        "pneumonia": (0.15, 0.15, 0.02),
        "atelectasis": (0.5, 0.05, 0.02),
        "emphysema": (0.1, 0.0, 0.03),
        "cardiomegaly": (0.2, 0.0, 0.1),
        "pulmonary_edema": (0.2, 0.06, 0.1),
        "pulmonary_congestion_pulmonary_venous_congestion": (0.1, 0.02, 0.03),
        "lung_opacity": (0.3, 0.02, 0.02),
        "air_space_opacity": (0.15, 0.03, 0.02),
        "ground_glass_opacity": (0.05, 0.0, 0.03),
        "hilar_lymphadenopathy": (0.02, 0.0, 0.1),
        "calcification_of_the_aorta": (0.15, 0.0, 0.0),
        "hiatus_hernia": (0.03, 0.0, 0.0),
        "fracture_generic": (0.02, 0.0, 0.2),
        "endotracheal_tube": (0.65, 0.0, 0.0),
        "enteric_tube": (0.6, 0.0, 0.0),
        "central_venous_catheter": (0.6, 0.0, 0.0),
        "pacemaker_electronic_cardiac_device_or_wires": (0.05, 0.0, 0.0),
    },
}
_KINDS = (("outpatient", 0.72), ("heart_failure", 0.14), ("intensive_care", 0.14))


def draw_states(rng: random.Random) -> dict[str, str]:
    """Each `INCIDENTAL_FINDINGS` name's state in one report (present/uncertain/absent/
    not mentioned), for a patient kind drawn first."""
    roll, kind = rng.random(), "outpatient"
    for name, chance in _KINDS:
        if roll < chance:
            kind = name
            break
        roll -= chance
    states: dict[str, str] = {}
    for finding in INCIDENTAL_FINDINGS:
        present, uncertain, absent = _PREVALENCE[kind][finding]
        roll = rng.random()
        if roll < present:
            states[finding] = "present"
        elif roll < present + uncertain:
            states[finding] = "uncertain"
        elif roll < present + uncertain + absent:
            states[finding] = "absent"
        else:
            states[finding] = "not mentioned"
    if states["pneumonia"] == "absent" and states["consolidation"] == "present":
        states["pneumonia"] = "not mentioned"
    return states


@dataclass
class Statements:
    """What the findings say: sentences per sub-heading group, and impression lines."""

    groups: dict[str, list[list[Piece]]] = field(
        default_factory=lambda: {
            "Lungs": [],
            "Pleura": [],
            "Heart and mediastinum": [],
            "Bones": [],
        }
    )
    impression: list[list[Piece]] = field(default_factory=list)


def _f(text: str, concept: str, state: str = "present") -> Mention:
    """A finding or device mention in ``state`` (present / uncertain / absent)."""
    kind = "device" if concept in _DEVICES else "finding"
    if state == "absent":
        return Mention(text, kind, concept, negation="negated")
    if state == "uncertain":
        return Mention(text, kind, concept, certainty="uncertain")
    return Mention(text, kind, concept)


def _pick(rng: random.Random, *options: list[Piece]) -> list[Piece]:
    """One of ``options`` (sentences, as lists of pieces)."""
    return rng.choice(options)


def _distance(rng: random.Random) -> Mention:
    """A tube tip's distance ("4.5 cm" above the carina), a measurement like any other."""
    cm = rng.choice((2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0))
    text = f"{cm:.1f} cm" if cm % 1 else f"{int(cm)} cm"
    return Mention(text, "measurement", "size", value_mm=cm * 10)


def _lobe(rng: random.Random) -> Mention:
    lobe = rng.choice(_LOBES)
    return Mention(lobe, "anatomy", lobe)


def _cap(word: str) -> str:
    return word[:1].upper() + word[1:]


_LOBES = (
    "right upper lobe",
    "right middle lobe",
    "right lower lobe",
    "left upper lobe",
    "left lower lobe",
)
_DEVICES = (
    "endotracheal_tube",
    "enteric_tube",
    "central_venous_catheter",
    "pacemaker_electronic_cardiac_device_or_wires",
)
#: absent findings written alone: the names a negated statement uses
_NEGATED_NAMES = {
    "pleural_effusion": ("pleural effusion", "pleural effusion", "pleural fluid"),
    "pneumothorax": ("pneumothorax",),
    "consolidation": ("consolidation", "focal consolidation"),
    "pneumonia": ("pneumonia",),
    "atelectasis": ("atelectasis",),
    "emphysema": ("emphysema",),
    "cardiomegaly": ("cardiomegaly",),
    "pulmonary_edema": ("pulmonary edema", "interstitial edema"),
    "pulmonary_congestion_pulmonary_venous_congestion": (
        "pulmonary vascular congestion",
        "vascular congestion",
    ),
    "lung_opacity": ("opacity",),
    "air_space_opacity": ("airspace disease", "airspace opacity"),
    "ground_glass_opacity": ("ground-glass opacity", "ground glass opacities"),
    "hilar_lymphadenopathy": ("hilar lymphadenopathy", "lymphadenopathy"),
    "fracture_generic": ("fracture", "acute fracture"),
}
#: words before a negated name that are not part of it ("No focal opacity")
_NEGATED_MODIFIER = {"lung_opacity": "focal "}
_GROUP = {
    "pleural_effusion": "Pleura",
    "pneumothorax": "Pleura",
    "cardiomegaly": "Heart and mediastinum",
    "hilar_lymphadenopathy": "Heart and mediastinum",
    "calcification_of_the_aorta": "Heart and mediastinum",
    "hiatus_hernia": "Heart and mediastinum",
    "pulmonary_congestion_pulmonary_venous_congestion": "Heart and mediastinum",
    "fracture_generic": "Bones",
}


def _effusion(
    rng: random.Random, state: str, with_atelectasis: bool
) -> tuple[list[Piece], list[Piece]]:
    """A present or uncertain effusion (findings sentence, impression line)."""
    side = rng.choice(("left", "right", "bilateral", "bilateral", "right"))
    plural = side == "bilateral"
    name = (
        "pleural effusions"
        if plural
        else rng.choice(("pleural effusion", "pleural effusion", "effusion"))
    )
    sentence: list[Piece]
    if state == "uncertain":
        options: list[list[Piece]] = [
            [f"Possible small {side} ", _f(name, "pleural_effusion", state), "."],
            [
                f"{'Small' if plural else 'A small'} {side} ",
                _f(name, "pleural_effusion", state),
                " cannot be excluded.",
            ],
            [f"Questionable trace {side} ", _f(name, "pleural_effusion", state), "."],
        ]
        sentence = rng.choice(options)
        return sentence, sentence
    size = rng.choice(("small", "small", "trace", "moderate", "large"))
    effusion = _f(name, "pleural_effusion")
    if with_atelectasis:
        sentence = [
            f"{_cap(size)} {side} ",
            effusion,
            *rng.choice(
                (
                    [" with adjacent "],
                    [" with adjacent compressive "],
                    [" and associated ", Mention("basilar", "anatomy", "lung base"), " "],
                )
            ),
            _f("atelectasis", "atelectasis"),
            ".",
        ]
    else:
        sentence = _pick(
            rng,
            [f"{_cap(size)} {side} ", effusion, "."],
            [f"There {'are' if plural else 'is a'} {size} {side} ", effusion, "."],
            [
                f"{_cap(size)} layering {side} ",
                effusion,
                " are present." if plural else " is present.",
            ],
        )
    impression: list[Piece] = [f"{_cap(size)} {side} ", _f(name, "pleural_effusion"), "."]
    return sentence, impression


def incidental_statements(rng: random.Random, states: dict[str, str]) -> Statements:
    """The sentences that say each finding's ``states`` value (not mentioned: nothing)."""
    out = Statements()
    said: set[str] = set()

    def add(group: str, pieces: list[Piece]) -> None:
        out.groups[group].append(pieces)

    # tubes and lines come first, as reports list them
    if states["endotracheal_tube"] == "present":
        said.add("endotracheal_tube")
        add(
            "Heart and mediastinum",
            _pick(
                rng,
                [
                    _f("Endotracheal tube", "endotracheal_tube"),
                    " terminates ",
                    _distance(rng),
                    " above the ",
                    Mention("carina", "anatomy", "carina"),
                    ".",
                ],
                ["An ", _f("endotracheal tube", "endotracheal_tube"), " is in standard position."],
                [
                    "The ",
                    _f("ET tube", "endotracheal_tube"),
                    " tip is ",
                    _distance(rng),
                    " above the ",
                    Mention("carina", "anatomy", "carina"),
                    ".",
                ],
            ),
        )
    if states["enteric_tube"] == "present":
        said.add("enteric_tube")
        stomach = Mention("stomach", "anatomy", "stomach")
        add(
            "Heart and mediastinum",
            _pick(
                rng,
                [_f("Nasogastric tube", "enteric_tube"), " courses into the ", stomach, "."],
                ["An ", _f("enteric tube", "enteric_tube"), " terminates in the ", stomach, "."],
                [_f("NG tube", "enteric_tube"), " tip is in the ", stomach, "."],
                [
                    "A ",
                    _f("feeding tube", "enteric_tube"),
                    " is seen with its tip in the ",
                    stomach,
                    ".",
                ],
            ),
        )
    if states["central_venous_catheter"] == "present":
        said.add("central_venous_catheter")
        svc = Mention("SVC", "anatomy", "superior vena cava")
        add(
            "Heart and mediastinum",
            _pick(
                rng,
                [
                    "A right internal jugular ",
                    _f("central venous catheter", "central_venous_catheter"),
                    " terminates in the ",
                    svc,
                    ".",
                ],
                ["Left ", _f("PICC", "central_venous_catheter"), " terminates in the ", svc, "."],
                [
                    "Right subclavian ",
                    _f("central line", "central_venous_catheter"),
                    " with tip in the ",
                    svc,
                    ".",
                ],
            ),
        )
    if states["pacemaker_electronic_cardiac_device_or_wires"] == "present":
        said.add("pacemaker_electronic_cardiac_device_or_wires")
        add(
            "Heart and mediastinum",
            [
                "Left ",
                Mention("chest wall", "anatomy", "chest wall"),
                " ",
                _f("pacemaker", "pacemaker_electronic_cardiac_device_or_wires"),
                " with leads in the right ",
                Mention("heart", "anatomy", "heart"),
                ".",
            ],
        )

    # the pleura: effusion (with its atelectasis) and pneumothorax
    effusion, pneumothorax = states["pleural_effusion"], states["pneumothorax"]
    if effusion == "absent" and pneumothorax == "absent":
        said |= {"pleural_effusion", "pneumothorax"}
        a = _f(rng.choice(_NEGATED_NAMES["pleural_effusion"]), "pleural_effusion", "absent")
        b = _f("pneumothorax", "pneumothorax", "absent")
        add(
            "Pleura",
            _pick(
                rng,
                ["No ", a, " or ", b, "."],
                ["There is no ", a, " or ", b, "."],
                ["No evidence of ", a, " or ", b, "."],
            ),
        )
    if effusion in ("present", "uncertain"):
        said.add("pleural_effusion")
        joint = effusion == "present" and states["atelectasis"] == "present" and rng.random() < 0.4
        if joint:
            said.add("atelectasis")
        sentence, impression = _effusion(rng, effusion, joint)
        add("Pleura", sentence)
        if effusion == "present" and rng.random() < 0.6:
            out.impression.append(impression)
    if pneumothorax in ("present", "uncertain"):
        said.add("pneumothorax")
        side = rng.choice(("left", "right"))
        if pneumothorax == "present":
            size = rng.choice(("small", "tiny", "small", "moderate"))
            sentence = _pick(
                rng,
                [f"{_cap(size)} {side} ", _f("pneumothorax", "pneumothorax"), "."],
                [f"There is a {size} {side} ", _f("pneumothorax", "pneumothorax"), "."],
            )
            out.impression.append(
                [f"{_cap(size)} {side} ", _f("pneumothorax", "pneumothorax"), "."]
            )
        else:
            sentence = _pick(
                rng,
                [f"Possible tiny {side} ", _f("pneumothorax", "pneumothorax", "uncertain"), "."],
                [
                    "A small ",
                    _f("pneumothorax", "pneumothorax", "uncertain"),
                    " cannot be excluded.",
                ],
            )
        add("Pleura", sentence)

    # the heart
    if states["cardiomegaly"] == "present":
        said.add("cardiomegaly")
        add(
            "Heart and mediastinum",
            _pick(
                rng,
                ["The ", _f("heart is enlarged", "cardiomegaly"), "."],
                ["The ", _f("heart is mildly enlarged", "cardiomegaly"), "."],
                ["Mild ", _f("cardiomegaly", "cardiomegaly"), "."],
                ["Moderate ", _f("cardiomegaly", "cardiomegaly"), "."],
                [_f("Cardiomegaly", "cardiomegaly"), " is noted."],
                ["There is ", _f("cardiomegaly", "cardiomegaly"), "."],
            ),
        )
        if rng.random() < 0.4:
            out.impression.append([_f("Cardiomegaly", "cardiomegaly"), "."])
    if states["pulmonary_congestion_pulmonary_venous_congestion"] == "present":
        said.add("pulmonary_congestion_pulmonary_venous_congestion")
        concept = "pulmonary_congestion_pulmonary_venous_congestion"
        add(
            "Lungs",
            _pick(
                rng,
                ["Mild ", _f("pulmonary vascular congestion", concept), "."],
                ["There is ", _f("pulmonary venous congestion", concept), "."],
                ["Moderate ", _f("vascular congestion", concept), "."],
            ),
        )
    if states["pulmonary_congestion_pulmonary_venous_congestion"] == "uncertain":
        said.add("pulmonary_congestion_pulmonary_venous_congestion")
        concept = "pulmonary_congestion_pulmonary_venous_congestion"
        add("Lungs", ["Possible mild ", _f("vascular congestion", concept, "uncertain"), "."])

    # the lungs
    if states["pulmonary_edema"] == "present":
        said.add("pulmonary_edema")
        name = rng.choice(("pulmonary edema", "interstitial edema", "pulmonary edema"))
        severity = rng.choice(("Mild", "Moderate", "Mild"))
        add("Lungs", [f"{severity} ", _f(name, "pulmonary_edema"), "."])
        if rng.random() < 0.5:
            out.impression.append([f"{severity} ", _f(name, "pulmonary_edema"), "."])
    elif states["pulmonary_edema"] == "uncertain":
        said.add("pulmonary_edema")
        add(
            "Lungs",
            _pick(
                rng,
                [
                    "Findings could reflect mild ",
                    _f("pulmonary edema", "pulmonary_edema", "uncertain"),
                    ".",
                ],
                [
                    "Mild ",
                    _f("interstitial edema", "pulmonary_edema", "uncertain"),
                    " is not excluded.",
                ],
            ),
        )
    if states["consolidation"] in ("present", "uncertain"):
        said.add("consolidation")
        lobe = _lobe(rng)
        if states["consolidation"] == "present":
            pneumonia = states["pneumonia"]
            tail: list[Piece] = ["."]
            if pneumonia in ("present", "uncertain"):
                said.add("pneumonia")
                tail = [
                    ", consistent with " if pneumonia == "present" else ", concerning for ",
                    _f("pneumonia", "pneumonia", pneumonia),
                    ".",
                ]
            sentence = _pick(
                rng,
                [_f("Consolidation", "consolidation"), " in the ", lobe, *tail],
                [_f("Focal consolidation", "consolidation"), " in the ", lobe, *tail],
                [
                    "There is ",
                    _f("airspace consolidation", "consolidation"),
                    " in the ",
                    lobe,
                    *tail,
                ],
                ["Dense ", _f("consolidation", "consolidation"), " of the ", lobe, *tail],
            )
            out.impression.append(
                [
                    _f("Consolidation", "consolidation"),
                    " in the ",
                    Mention(lobe.text, "anatomy", lobe.concept),
                    *tail,
                ]
            )
        else:
            sentence = [
                "Possible early ",
                _f("consolidation", "consolidation", "uncertain"),
                " in the ",
                lobe,
                ".",
            ]
        add("Lungs", sentence)
    if states["pneumonia"] in ("present", "uncertain") and "pneumonia" not in said:
        said.add("pneumonia")
        lobe = _lobe(rng)
        if states["pneumonia"] == "present":
            sentence = _pick(
                rng,
                ["Findings consistent with ", _f("pneumonia", "pneumonia"), " in the ", lobe, "."],
                [_f("Multifocal pneumonia", "pneumonia"), "."],
            )
            out.impression.append(sentence)
        else:
            p = _f("pneumonia", "pneumonia", "uncertain")
            sentence = _pick(
                rng,
                ["Cannot exclude early ", p, " in the ", lobe, "."],
                ["Findings in the ", lobe, " may represent early ", p, "."],
                ["Patchy changes in the ", lobe, ", suspicious for early ", p, "."],
            )
        add("Lungs", sentence)
    for concept, words in (
        ("lung_opacity", ("Patchy ", "Ill-defined ", "Streaky ")),
        ("air_space_opacity", ("Patchy ", "Multifocal ", "")),
    ):
        if states[concept] == "present":
            said.add(concept)
            name = (
                rng.choice(("opacity", "opacities", "opacity"))
                if concept == "lung_opacity"
                else rng.choice(("airspace opacity", "airspace disease", "airspace opacities"))
            )
            word = rng.choice(words)
            mention = _f(name if word else _cap(name), concept)
            add("Lungs", [word, mention, " in the ", _lobe(rng), "."])
        elif states[concept] == "uncertain":
            said.add(concept)
            name = "opacity" if concept == "lung_opacity" else "airspace opacity"
            add(
                "Lungs",
                ["Possible faint ", _f(name, concept, "uncertain"), " in the ", _lobe(rng), "."],
            )
    if states["atelectasis"] in ("present", "uncertain") and "atelectasis" not in said:
        said.add("atelectasis")
        if states["atelectasis"] == "present":
            sentence = _pick(
                rng,
                [
                    "Mild ",
                    Mention("bibasilar", "anatomy", "lung base"),
                    " ",
                    _f("atelectasis", "atelectasis"),
                    ".",
                ],
                [
                    Mention("Bibasilar", "anatomy", "lung base"),
                    " ",
                    _f("atelectasis", "atelectasis"),
                    ".",
                ],
                [_f("Subsegmental atelectasis", "atelectasis"), " in the ", _lobe(rng), "."],
                [_f("Linear atelectasis", "atelectasis"), " in the ", _lobe(rng), "."],
                [
                    "Dependent ",
                    _f("atelectasis", "atelectasis"),
                    " at the ",
                    Mention("lung bases", "anatomy", "lung base"),
                    ".",
                ],
            )
        else:
            sentence = _pick(
                rng,
                [
                    "Subtle changes at the ",
                    Mention("bases", "anatomy", "lung base"),
                    ", which may represent ",
                    _f("atelectasis", "atelectasis", "uncertain"),
                    ".",
                ],
                [
                    Mention("Bibasilar", "anatomy", "lung base"),
                    " changes, probably ",
                    _f("atelectasis", "atelectasis", "uncertain"),
                    ".",
                ],
            )
        add("Lungs", sentence)
    if states["emphysema"] in ("present", "uncertain"):
        said.add("emphysema")
        if states["emphysema"] == "present":
            name = rng.choice(("emphysema", "centrilobular emphysema", "paraseptal emphysema"))
            add(
                "Lungs",
                _pick(
                    rng,
                    ["Mild ", _f(name, "emphysema"), "."],
                    ["Moderate ", _f(name, "emphysema"), "."],
                    [
                        Mention("Upper lobe", "anatomy", "upper lobe"),
                        " predominant ",
                        _f(name, "emphysema"),
                        ".",
                    ],
                ),
            )
        else:
            add("Lungs", ["Possible mild ", _f("emphysema", "emphysema", "uncertain"), "."])
    if states["ground_glass_opacity"] == "present":
        said.add("ground_glass_opacity")
        name = rng.choice(("ground-glass opacity", "ground glass opacities"))
        add("Lungs", ["Faint ", _f(name, "ground_glass_opacity"), " in the ", _lobe(rng), "."])
    if states["hilar_lymphadenopathy"] in ("present", "uncertain"):
        said.add("hilar_lymphadenopathy")
        state = states["hilar_lymphadenopathy"]
        add(
            "Heart and mediastinum",
            ["Mild ", _f("hilar lymphadenopathy", "hilar_lymphadenopathy", state), "."]
            if state == "present"
            else [
                "Possible mild ",
                _f("hilar lymphadenopathy", "hilar_lymphadenopathy", state),
                ".",
            ],
        )
    if states["calcification_of_the_aorta"] == "present":
        said.add("calcification_of_the_aorta")
        add(
            "Heart and mediastinum",
            _pick(
                rng,
                [
                    "Atherosclerotic ",
                    _f(
                        rng.choice(("aortic calcification", "calcification of the aorta")),
                        "calcification_of_the_aorta",
                    ),
                    " is noted.",
                ],
                ["The ", _f("aorta is calcified", "calcification_of_the_aorta"), "."],
            ),
        )
    if states["hiatus_hernia"] == "present":
        said.add("hiatus_hernia")
        add("Heart and mediastinum", ["Small ", _f("hiatal hernia", "hiatus_hernia"), "."])
    if states["fracture_generic"] == "present":
        said.add("fracture_generic")
        add(
            "Bones",
            [_f("Acute fracture", "fracture_generic"), " of a right ",
             Mention("rib", "anatomy", "rib"), "."],
        )  # fmt: skip

    # the rest of the absent findings, one or two to a sentence
    absent = [c for c in INCIDENTAL_FINDINGS if states[c] == "absent" and c not in said]
    rng.shuffle(absent)
    while absent:
        first = absent.pop()
        group = _GROUP.get(first, "Lungs")
        a = _f(rng.choice(_NEGATED_NAMES[first]), first, "absent")
        partner = next((c for c in absent if _GROUP.get(c, "Lungs") == group), None)
        if partner is not None and rng.random() < 0.5:
            absent.remove(partner)
            b = _f(rng.choice(_NEGATED_NAMES[partner]), partner, "absent")
            a_, b_ = _NEGATED_MODIFIER.get(first, ""), _NEGATED_MODIFIER.get(partner, "")
            add(
                group,
                _pick(
                    rng,
                    [f"No {a_}", a, f" or {b_}", b, "."],
                    [f"There is no {a_}", a, f" or {b_}", b, "."],
                ),
            )
            continue
        modifier = _NEGATED_MODIFIER.get(first, "")
        capital = Mention(_cap(a.text), a.type, a.concept, negation="negated")
        plural = a.text.endswith("ies")
        add(
            group,
            _pick(
                rng,
                [f"No {modifier}", a, "."],
                [f"Negative for {modifier}", a, "."],
                [f"Without evidence of {modifier}", a, "."],
                [f"There is no evidence of {modifier}", a, "."],
                [_cap(modifier), a, " is not seen."]
                if modifier
                else [capital, " are not seen." if plural else " is not seen."],
            ),
        )
    return out
