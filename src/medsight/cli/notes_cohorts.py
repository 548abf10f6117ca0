"""What the synthetic notes are written about, from the other modalities' synthetic cohorts.

The text modality may not import imaging or EHR, so the CLI (which may) turns their cohorts
into the plain dicts `medsight.text.synth.notes_corpus.write_notes_corpus` takes:

* `chest_ct_cases`: the cases of `medsight synth chest-ct --cases N --seed S` (the same
  `plan_cohort`, nothing rendered): label, nodule size, lobe and character per case.
* `ehr_patients`: subject id, sex and age of the first patients of
  `medsight synth ehr --patients N --seed S`.

Lobe from the nodule's position. The phantom places a nodule at ``center_frac`` =
(z, y, x) fractions of the deep part of one lung's bounding box (z towards the head, y
towards the back; see `chest_phantom.nodule_center`), in the lung ``Anatomy.side``. The
lobes follow the two fissures, approximated as planes in those fractions:

* the oblique fissure runs from high at the back to low at the front: a point is in the
  lower lobe when ``z < 0.25 + 0.5 * y`` (at the back, below 75% of the height; at the front,
  below 25%);
* above it, in the right lung, the horizontal fissure at ``z = 0.55`` separates the upper lobe
  (above) from the middle lobe; in the left lung everything above is the upper lobe (the
  lingula is part of it).

Character, in the order a radiologist names the most telling feature: a calcified benign
nodule is ``calcified``, other benign ones ``smooth``; a malignant one with spicules is
``spiculated``, else with a ground-glass rim ``part-solid``, else ``lobulated`` (every
malignant nodule of the generator is lobulated).
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def nodule_lobe(side: str, center_frac: tuple[float, float, float]) -> str:
    """The lobe holding a nodule at ``center_frac`` (z, y, x) in lung ``side``."""
    z, y, _ = center_frac
    if z < 0.25 + 0.5 * y:
        return f"{side} lower lobe"
    if side == "right" and z < 0.55:
        return "right middle lobe"
    return f"{side} upper lobe"


def nodule_character(
    kind: str, calcified: str, spicules: tuple[Any, ...], ground_glass_core: float
) -> str:
    """The character word for a nodule of the phantom (see the module docstring)."""
    if kind == "benign":
        return "calcified" if calcified != "none" else "smooth"
    if spicules:
        return "spiculated"
    if ground_glass_core < 1:
        return "part-solid"
    return "lobulated"


def chest_ct_cases(n_cases: int, seed: int) -> list[dict[str, Any]]:
    """The chest-CT cohort's cases as the dicts the report generator takes."""
    from medsight.imaging.synth.chest_ct import plan_cohort

    cases = []
    for spec in plan_cohort(n_cases, seed):
        nodule = spec.nodule
        identity = spec.identity
        row: dict[str, Any] = {
            "case_id": spec.case_id,
            "patient_id": identity.patient_id,
            "label": spec.label,
            "size_mm": None,
            "lobe": None,
            "character": None,
            "study_date": dt.datetime.strptime(identity.study_date, "%Y%m%d").date().isoformat(),
            "age": identity.age_years,
            "sex": identity.sex,
        }
        if nodule is not None:
            row["size_mm"] = round(nodule.diameter_mm, 2)
            row["lobe"] = nodule_lobe(spec.anatomy.side, nodule.center_frac)
            row["character"] = nodule_character(
                nodule.kind, nodule.calcified, nodule.spicules, nodule.ground_glass_core
            )
        cases.append(row)
    return cases


def ehr_patients(n_patients: int, seed: int) -> list[dict[str, Any]]:
    """Subject id, sex and age (on the prediction date) of the EHR cohort's first patients."""
    import numpy as np

    from medsight.ehr.synth import PREDICTION_DATE
    from medsight.ehr.synth.diabetes_cohort import iter_cohort

    at = np.datetime64(PREDICTION_DATE, "us").astype(np.int64)
    patients: list[dict[str, Any]] = []
    for chunk in iter_cohort(n_patients, seed):
        ages = (at - chunk.birth_us) / (365.25 * 86400 * 1e6)
        for subject, female, age in zip(chunk.subject_id, chunk.female, ages, strict=True):
            patients.append(
                {"subject_id": str(int(subject)), "sex": "F" if female else "M", "age": int(age)}
            )
    return patients
