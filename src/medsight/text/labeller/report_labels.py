"""A report's label per finding from its analysed entities (present / absent / uncertain /
not mentioned), the way a reader of the report would summarise it.

The rules (`LabelRules`, defaults chosen and measured on the radlabels reports, see the
README's text section):

* Only finding and device entities whose concept is a finding name count, and only mentions
  about the patient (experiencer ``other`` is ignored) that are not hypothetical ("if
  pneumonia is suspected"). Mentions in the history / indication / comparison / technique
  sections are the question, not the answer ("rule out pneumonia"): ignored.
* A mention is ``absent`` when negated ("no definite effusion" too: negation wins over
  uncertainty), else ``uncertain`` when uncertain ("possible", "may represent", "cannot be
  excluded"), else ``present``.
* ``historical`` mentions ("history of pneumonia", "previously seen nodule") do not label
  the report: ConText and the synthetic gold keep ``historical`` for a past episode, and a
  finding seen on this study is ``recent`` even when compared with a prior one ("prior
  nodule unchanged"). `LabelRules.historical_in_body` counts historical mentions in the
  findings/impression sections like recent ones ("old right rib fracture is again seen"
  describes this image); off by default: it moves the radlabels agreement by 0.002 of kappa
  and, where a headerless indication paragraph lands in the findings, turns "remote history
  of pneumonia" into a present pneumonia.
* Several mentions: present beats uncertain beats absent (CheXpert's aggregation, and the
  synthetic corpus's gold: one affirmed sentence is enough; "no effusion on the left, small
  effusion on the right" is present). `LabelRules.impression_decides` lets the impression's
  mentions decide alone when it has any (the radiologist's conclusion); off by default: on
  the radlabels reports it changes next to nothing (pooled kappa 0.818 off, 0.817 on) and
  the synthetic gold does not rank sections.
* Implied findings (`IMPLIED`): a present or uncertain specific finding makes its broader
  finding at least as present (consolidation and pneumonia are air-space opacities, pulmonary
  edema is pulmonary venous congestion in this label set, a rib fracture is a fracture, a
  lobar collapse is atelectasis). Absence does not travel up ("no consolidation" says
  nothing about other opacities).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from medsight.errors import InputError
from medsight.text.labeller.findings import FINDINGS
from medsight.text.pipeline.annotations import AnalyzedNote, Entity

#: report labels, strongest first: combining mentions keeps the first that occurs
RANK = ("present", "uncertain", "absent")
NOT_MENTIONED = "not mentioned"

#: specific finding -> the broader findings it implies when present or uncertain. The broader
#: names follow the radlabels label set's hierarchy: ``air_space_opacity`` is its parent of
#: lung opacities (CheXpert's "Lung Opacity": an opacity, consolidation or pneumonia on a
#: radiograph is an air-space opacity) and ``pulmonary_congestion_pulmonary_venous_congestion``
#: the parent of pulmonary edema (on a radiograph, oedema is the advanced stage of venous
#: congestion). Measured on the radlabels reports: without these, kappa on air-space opacity
#: is 0.10, on congestion 0.22 and on fracture 0.50 (0.70, 0.77 and 0.94 with them; all
#: findings pooled 0.755 -> 0.818).
IMPLIED: dict[str, tuple[str, ...]] = {
    "consolidation": ("air_space_opacity",),
    "pneumonia": ("air_space_opacity",),
    "lung_opacity": ("air_space_opacity",),
    "pulmonary_edema": ("pulmonary_congestion_pulmonary_venous_congestion",),
    "acute_rib_fracture": ("fracture_generic",),
    "non_acute_rib_fracture": ("fracture_generic",),
    "lobar_segmental_collapse": ("atelectasis",),
    "whole_lung_or_majority_collapse": ("atelectasis",),
    "ground_glass_opacity": ("lung_opacity", "air_space_opacity"),
}

BODY_SECTIONS = ("findings", "impression")


@dataclass(frozen=True)
class LabelRules:
    """How mentions become report labels (see the module docstring for why each default)."""

    #: sections whose mentions never label the report
    ignored_sections: tuple[str, ...] = (
        "history",
        "comparison",
        "technique",
        "past_medical_history",
        "family_history",
        "social_history",
        "medications",
        "allergies",
    )
    #: when the impression mentions a finding, only its mentions decide
    impression_decides: bool = False
    #: historical mentions in the findings/impression sections count like recent ones
    historical_in_body: bool = False
    implied: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(IMPLIED))


DEFAULT_RULES = LabelRules()


def mention_label(entity: Entity, rules: LabelRules = DEFAULT_RULES) -> str | None:
    """What one mention says about its finding: present/absent/uncertain, or None if nothing."""
    if entity.type not in ("finding", "device"):
        return None
    if entity.experiencer == "other" or entity.temporality == "hypothetical":
        return None
    if entity.section in rules.ignored_sections:
        return None
    if entity.temporality == "historical" and not (
        rules.historical_in_body and entity.section in BODY_SECTIONS
    ):
        return None
    if entity.negation == "negated":
        return "absent"
    if entity.certainty == "uncertain":
        return "uncertain"
    return "present"


def combine(labels: Iterable[str]) -> str:
    """The strongest of several mention labels (`RANK`), ``not mentioned`` for none."""
    seen = set(labels)
    return next((label for label in RANK if label in seen), NOT_MENTIONED)


def deciding_mentions(
    analyzed: AnalyzedNote, finding: str, rules: LabelRules = DEFAULT_RULES
) -> list[tuple[Entity, str]]:
    """The mentions of ``finding`` that decide its label, each with what it says.

    The impression's mentions when `LabelRules.impression_decides` and it has any, else all
    counted mentions. Implied findings are not included (see `label_report`).
    """
    counted = [
        (e, label)
        for e in analyzed.entities
        if e.concept == finding and (label := mention_label(e, rules)) is not None
    ]
    if rules.impression_decides:
        impression = [(e, label) for e, label in counted if e.section == "impression"]
        if impression:
            return impression
    return counted


def label_report(
    analyzed: AnalyzedNote,
    findings: Sequence[str] | None = None,
    rules: LabelRules = DEFAULT_RULES,
) -> dict[str, str]:
    """``{finding: present|absent|uncertain|not mentioned}`` for a report.

    Args:
        analyzed: The report after the rule pipeline (`TextPipeline.analyze`).
        findings: The findings to label, in this order (default `FINDINGS`).
        rules: The mention and combination rules.

    Returns:
        One label per finding asked for.

    Raises:
        InputError: If a finding name is not one of `FINDINGS`.
    """
    wanted = list(FINDINGS if findings is None else findings)
    unknown = [f for f in wanted if f not in FINDINGS]
    if unknown:
        raise InputError(f"label_report: unknown finding {unknown[0]!r}; see labeller FINDINGS")
    labels = {
        finding: combine(label for _, label in deciding_mentions(analyzed, finding, rules))
        for finding in FINDINGS
    }
    for child, parents in rules.implied.items():
        if labels.get(child) in ("present", "uncertain"):
            for parent in parents:
                labels[parent] = combine([labels[parent], labels[child]])
    return {finding: labels[finding] for finding in wanted}
