"""Sizes in mm and the finding each one sizes."""

from __future__ import annotations

import pytest

from medsight.text.pipeline.analyze import TextPipeline
from medsight.text.pipeline.measurements import find_measurements


@pytest.mark.parametrize(
    ("written", "value_mm"),
    [
        ("8 mm", 8.0),
        ("1.2 cm", 12.0),
        ("8 x 6 mm", 8.0),
        ("14 x 11 x 9 mm", 14.0),
        ("2.1 x 3.4 cm", 34.0),
        ("6-mm", 6.0),
        ("11mm", 11.0),
        ("3 centimeters", 30.0),
    ],
)
def test_sizes_are_millimetres_of_the_largest_dimension(written: str, value_mm: float) -> None:
    (size,) = find_measurements(f"A {written} nodule.")
    assert size.value_mm == value_mm and size.text == written and size.concept == "size"


def test_numbers_without_units_are_not_sizes() -> None:
    assert find_measurements("Rib 5 and 6. Dose 10 mg. Level 2.5.") == []


def test_each_finding_takes_the_nearest_size_in_its_sentence(pipeline: TextPipeline) -> None:
    text = (
        "There is a 14 x 11 mm spiculated nodule in the right upper lobe. "
        "A 2.3 cm mass abuts the pleura. The ET tube is 4 cm above the carina."
    )
    found = {e.text: e for e in pipeline.analyze_text(text).entities}
    assert found["nodule"].value_mm == 14.0
    assert found["mass"].value_mm == 23.0
    # a device is positioned, not sized
    assert found["ET tube"].value_mm is None


def test_a_previous_size_does_not_size_the_finding_now(pipeline: TextPipeline) -> None:
    text = "The nodule has grown, now measuring 1.9 cm (previously 16 x 14 mm)."
    entities = pipeline.analyze_text(text).entities
    nodule = next(e for e in entities if e.concept == "lung_nodule_or_mass")
    sizes = [e for e in entities if e.type == "measurement"]
    assert nodule.value_mm == 19.0
    assert [(s.value_mm, s.temporality) for s in sizes] == [(19.0, "recent"), (16.0, "historical")]


def test_a_size_in_another_sentence_is_not_attached(pipeline: TextPipeline) -> None:
    entities = pipeline.analyze_text("Small effusion. Carina at 3 cm.").entities
    effusion = next(e for e in entities if e.concept == "pleural_effusion")
    assert effusion.value_mm is None
