"""The report labeller's rules on hand-made analysed reports."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from medsight.errors import InputError
from medsight.text.labeller.findings import FINDINGS
from medsight.text.labeller.report_labels import LabelRules, label_report

REPORT = (
    "INDICATION: Rule out pneumonia.\n"
    "FINDINGS: No pneumothorax. Possible small left effusion. Heart is enlarged. "
    "Old right rib fracture. Endotracheal tube in place. Mother had emphysema. "
    "Possible mild edema.\n"
    "IMPRESSION: No effusion. Consolidation at the left base.\n"
)


def test_each_rule_on_one_report(analysed: Callable) -> None:
    note = analysed(
        REPORT,
        [
            ("pneumonia", "pneumonia", {}),
            ("pneumothorax", "pneumothorax", {"negation": "negated"}),
            ("effusion", "pleural_effusion", {"certainty": "uncertain"}),
            ("enlarged", "cardiomegaly", {}),
            ("rib fracture", "non_acute_rib_fracture", {"temporality": "historical"}),
            ("Endotracheal tube", "endotracheal_tube", {"type": "device"}),
            ("emphysema", "emphysema", {"experiencer": "other"}),
            ("No effusion", "pleural_effusion", {"negation": "negated"}),
            ("Consolidation", "consolidation", {}),
            ("edema", "pulmonary_edema", {"certainty": "uncertain"}),
        ],
    )
    labels = label_report(note)
    assert list(labels) == list(FINDINGS)
    assert labels["pneumonia"] == "not mentioned"  # indication only
    assert labels["pneumothorax"] == "absent"
    assert labels["pleural_effusion"] == "uncertain"  # uncertain beats absent
    assert labels["cardiomegaly"] == "present"
    assert labels["non_acute_rib_fracture"] == "not mentioned"  # historical
    assert labels["fracture_generic"] == "not mentioned"
    assert labels["endotracheal_tube"] == "present"
    assert labels["emphysema"] == "not mentioned"  # the mother's
    assert labels["consolidation"] == "present"
    assert labels["air_space_opacity"] == "present"  # implied by consolidation
    assert labels["atelectasis"] == "not mentioned"
    assert labels["pulmonary_edema"] == "uncertain"
    # implied as uncertain as the edema that implies it
    assert labels["pulmonary_congestion_pulmonary_venous_congestion"] == "uncertain"


def test_rules_can_be_switched(analysed: Callable) -> None:
    note = analysed(
        REPORT,
        [
            ("effusion", "pleural_effusion", {"certainty": "uncertain"}),
            ("No effusion", "pleural_effusion", {"negation": "negated"}),
            ("rib fracture", "non_acute_rib_fracture", {"temporality": "historical"}),
        ],
    )
    rules = LabelRules(impression_decides=True, historical_in_body=True, implied={})
    labels = label_report(
        note, ["pleural_effusion", "non_acute_rib_fracture", "fracture_generic"], rules
    )
    assert labels == {
        "pleural_effusion": "absent",  # the impression decides
        "non_acute_rib_fracture": "present",  # historical, but in the findings
        "fracture_generic": "not mentioned",  # no implied findings
    }


@pytest.mark.parametrize(
    ("contexts", "expected"),
    [
        ([{"negation": "negated"}, {"certainty": "uncertain"}], "uncertain"),
        ([{"negation": "negated"}, {}], "present"),
        ([{"negation": "negated", "certainty": "uncertain"}], "absent"),  # "no definite effusion"
        ([{"temporality": "hypothetical"}], "not mentioned"),
    ],
)
def test_mentions_combine_present_over_uncertain_over_absent(
    analysed: Callable, contexts: list[dict], expected: str
) -> None:
    text = "FINDINGS: effusion one. effusion two.\n"
    note = analysed(text, [])
    base = analysed(text, [("effusion one", "pleural_effusion", {})]).entities[0]
    for i, context in enumerate(contexts):
        entity = type(base)(**{**base.to_json(), "start": base.start + 13 * i, **context})
        note.entities.append(entity)
    assert label_report(note, ["pleural_effusion"]) == {"pleural_effusion": expected}


def test_unknown_finding_is_refused(analysed: Callable) -> None:
    with pytest.raises(InputError, match="unknown finding 'effusion'"):
        label_report(analysed("FINDINGS: x.", []), ["effusion"])
