import json
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from medsight.ehr.explain.code_catalogue import UNKNOWN, CodeCatalogue, codes_by_index
from medsight.ehr.explain.code_groups import code_group
from medsight.ehr.explain.global_importance import code_importance
from medsight.ehr.explain.timeline_figure import TimelineEvent, timeline_figure, top_events

PNG = b"\x89PNG\r\n\x1a\n"
CODES = codes_by_index(["LOINC//4548-4", "ATC//A10BA02", "ICD10CM//I10"])  # indices 2, 3, 4


class CountsCode(nn.Module):
    """Logit = 2 x (number of HbA1c events) - 0.5 x (metformin events); I10 ignored."""

    def embed(self, batch: Mapping[str, Tensor]) -> Tensor:
        return nn.functional.one_hot(batch["code"], len(CODES)).float()

    def forward_embedded(self, embeddings: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        weights = torch.zeros(len(CODES))
        weights[2], weights[3] = 2.0, -0.5
        return (embeddings * batch["mask"].unsqueeze(-1) * weights).sum((1, 2))


def batch(codes: list[list[int]]) -> dict[str, Tensor]:
    width = max(len(c) for c in codes)
    code = torch.tensor([c + [0] * (width - len(c)) for c in codes])
    return {"code": code, "mask": code > 0}


def test_codes_rank_by_their_mean_effect_and_keep_their_direction() -> None:
    batches = [batch([[2, 3, 4], [3, 3]]), batch([[2, 2, 4, 4], [4]])]
    catalogue = CodeCatalogue(descriptions={"LOINC//4548-4": "HbA1c"})
    result = code_importance(CountsCode(), batches, CODES, catalogue, steps=4)
    json.dumps(result)
    assert result["n_samples"] == 4
    rows = {r["code"]: r for r in result["codes"]}
    assert [r["code"] for r in result["codes"]][:2] == ["LOINC//4548-4", "ATC//A10BA02"]
    # HbA1c: |2| in sample 1, |4| in sample 3 -> (2 + 4) / 4 samples
    assert rows["LOINC//4548-4"]["importance"] == pytest.approx(1.5)
    assert rows["LOINC//4548-4"]["description"] == "HbA1c"
    assert rows["LOINC//4548-4"]["group"] == "labs"
    assert rows["ATC//A10BA02"]["mean_signed_per_sample"] == pytest.approx(-0.75)
    assert rows["ATC//A10BA02"]["n_samples_with"] == 2
    assert rows.get("ICD10CM//I10", {"importance": 0.0})["importance"] == pytest.approx(0.0)
    assert "<padding>" not in rows


@pytest.mark.parametrize(
    ("code", "group"),
    [
        ("LOINC//4548-4", "labs"),
        ("LOINC//8480-6", "vitals"),
        ("ICD10CM//E11.9", "diagnoses"),
        ("ATC//A10BA02", "medications"),
        ("ENCOUNTER//inpatient", "encounters"),
        ("DISCHARGE//home", "encounters"),
        ("EICU_LAB//glucose", "labs"),
        ("SEX//F", "demographics"),
        ("MEDS_BIRTH", "demographics"),
        ("WHATEVER//x", "other"),
    ],
)
def test_code_groups(code: str, group: str) -> None:
    assert code_group(code) == group


def test_catalogue_reads_a_runs_codes_json(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"
    path.write_text(json.dumps({"LOINC//4548-4": {"description": "HbA1c", "unit": "%"}}))
    catalogue = CodeCatalogue.from_json(path)
    assert catalogue.description("LOINC//4548-4") == "HbA1c"
    assert catalogue.unit("LOINC//4548-4") == "%"
    assert catalogue.description("ATC//X") == "ATC//X"
    assert "outside" in catalogue.description(UNKNOWN)
    assert not CodeCatalogue.from_json(tmp_path / "missing.json")


def test_timeline_is_a_png_with_or_without_events() -> None:
    events = [
        TimelineEvent("LOINC//4548-4", "HbA1c", 30.0, 9.1, "%", 0.8),
        TimelineEvent("ATC//A10BA02", "metformin", 10.0, None, None, -0.3),
        TimelineEvent("SEX//F", "Female", 0.0, None, None, 0.01),
    ]
    assert [e.code for e in top_events(events, 2)] == ["LOINC//4548-4", "ATC//A10BA02"]
    assert events[0].label() == "HbA1c: 9.1 %"
    assert timeline_figure(events, 0.4, 0.2).startswith(PNG)
    assert timeline_figure([], 0.1).startswith(PNG)
