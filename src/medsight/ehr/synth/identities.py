"""Synthetic identities for the FHIR variant: the PHI de-identification must remove.

Names, MRNs, addresses, phone numbers and e-mail addresses are drawn from small fictional
lists (street and city names are invented; phone numbers use the reserved 555-01xx range), from
their own seed stream so that the MEDS rows of a patient do not depend on them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

_GIVEN_F = ("Maria", "Linda", "Aisha", "Chen", "Fatima", "Grace", "Ingrid", "Joan", "Keiko", "Nora")
_GIVEN_M = ("James", "Carlos", "Dmitri", "Ahmed", "Hiro", "Kwame", "Liam", "Omar", "Pavel", "Tomas")
_FAMILY = (
    "Synthwell", "Mockford", "Fakeham", "Dataway", "Seedley", "Randall", "Sampleton",
    "Placeholt", "Testa", "Nullberg", "Phantomson", "Vectorly",
)  # fmt: skip
_STREETS = ("Maple Ave", "Harbor St", "Linden Rd", "Orchard Ln", "Quarry Way", "Willow Ct")
_CITIES = (("Springvale", "OH", "44"), ("Riverton", "PA", "15"), ("Lakemont", "MI", "48"))
SITE_NAMES = ("Site A General Hospital", "Site B Regional Medical Center")
MRN_SYSTEMS = ("https://site-a.example.org/fhir/mrn", "https://site-b.example.org/fhir/mrn")


@dataclass(frozen=True)
class Identity:
    """One patient's identifying details (all fictional)."""

    patient_id: str  # the FHIR Patient.id (a UUID)
    mrn: str
    given: str
    family: str
    line: str
    city: str
    state: str
    postal_code: str
    phone: str
    email: str


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` random (version 4) UUID strings from ``rng``."""
    raw = rng.bytes(16 * n)
    return [str(uuid.UUID(bytes=raw[16 * i : 16 * i + 16], version=4)) for i in range(n)]


def draw_identities(
    rng: np.random.Generator, female: np.ndarray, site_b: np.ndarray
) -> list[Identity]:
    """One identity per patient (``female`` and ``site_b`` pick the given name and MRN form)."""
    n = len(female)
    ids = uuids(rng, n)
    numbers = rng.integers(1_000_000, 9_999_999, n)
    given_i = rng.integers(0, 10, n)
    family_i = rng.integers(0, len(_FAMILY), n)
    street_i = rng.integers(0, len(_STREETS), n)
    house = rng.integers(1, 1999, n)
    city_i = rng.integers(0, len(_CITIES), n)
    zip_tail = rng.integers(100, 999, n)
    phone = rng.integers(0, 100, n)
    out = []
    for i in range(n):
        given = (_GIVEN_F if female[i] else _GIVEN_M)[given_i[i]]
        family = _FAMILY[family_i[i]]
        city, state, zip_head = _CITIES[city_i[i]]
        mrn = f"B-{numbers[i]}" if site_b[i] else f"A{numbers[i]}"
        out.append(
            Identity(
                patient_id=ids[i],
                mrn=mrn,
                given=given,
                family=family,
                line=f"{house[i]} {_STREETS[street_i[i]]}",
                city=city,
                state=state,
                postal_code=f"{zip_head}{zip_tail[i]}",
                phone=f"555-01{phone[i]:02d}",
                email=f"{given.lower()}.{family.lower()}{numbers[i] % 1000}@example.com",
            )
        )
    return out
