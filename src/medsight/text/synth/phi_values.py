"""Fictional identifying details for the discharge summaries: every PHI type the
de-identification must find (names, dates, ages, identifiers, phone/fax, e-mail, URL, street
addresses, cities, hospitals), drawn from small invented lists and seeded number patterns.

Phone and fax numbers use the reserved 555-01xx range; e-mail and web addresses use the
``example`` domains reserved for documentation; the SSN-like numbers start with 9 (never issued).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

GIVEN_F = (
    "Maria", "Linda", "Aisha", "Grace", "Ingrid", "Joan", "Keiko", "Nora", "Ruth", "Elena",
    "Priya", "Sofia", "Hannah", "Beatrice", "Yolanda", "Margaret", "Olivia", "Mei", "Amara",
    "Dorothy",
)  # fmt: skip
GIVEN_M = (
    "James", "Carlos", "Dmitri", "Ahmed", "Hiro", "Kwame", "Liam", "Omar", "Pavel", "Tomas",
    "Robert", "Samuel", "Arjun", "Felix", "George", "Walter", "Diego", "Ivan", "Mateo", "Henry",
)  # fmt: skip
FAMILY = (
    "Alvarez", "Brennan", "Castellano", "Donnelly", "Eriksen", "Fairbanks", "Gallagher",
    "Hargrove", "Iverson", "Jablonski", "Kowalczyk", "Lindqvist", "Montague", "Nakamura",
    "Okafor", "Pemberton", "Quintero", "Rasmussen", "Santoro", "Thornbury", "Underhill",
    "Vasquez", "Whitfield", "Yamamoto", "Zielinski", "Abernathy", "Blackwood", "Cardenas",
)  # fmt: skip
STREETS = (
    "Maple Avenue", "Harbor Street", "Linden Road", "Orchard Lane", "Quarry Way", "Willow Court",
    "Birch Drive", "Chestnut Boulevard", "Mill Pond Road", "Summit Terrace",
)  # fmt: skip
CITIES = (
    ("Springvale", "OH"), ("Riverton", "PA"), ("Lakemont", "MI"), ("Cedar Falls", "IA"),
    ("Brookhaven", "GA"), ("Fairmont", "WV"), ("Glenwood", "CO"), ("Oakridge", "TN"),
)  # fmt: skip
HOSPITALS = (
    "Springvale General Hospital", "Riverton Regional Medical Center", "St. Agatha's Hospital",
    "Lakemont Community Hospital", "Mercy Heights Medical Center", "Northfield Clinic",
)  # fmt: skip
RELATIONS = {"F": ("daughter", "sister", "mother"), "M": ("son", "brother", "father")}


@dataclass(frozen=True)
class Person:
    """A named person: given and family name, sex."""

    given: str
    family: str
    sex: str


def person(rng: random.Random, sex: str | None = None) -> Person:
    """A random fictional person (of ``sex`` when given)."""
    sex = sex or rng.choice("FM")
    return Person(rng.choice(GIVEN_F if sex == "F" else GIVEN_M), rng.choice(FAMILY), sex)


def phone(rng: random.Random) -> str:
    """A phone number in the reserved 555-01xx range, in one of three layouts."""
    area, line = rng.randrange(200, 990), rng.randrange(100)
    return rng.choice(
        (f"({area}) 555-01{line:02d}", f"{area}-555-01{line:02d}", f"{area}.555.01{line:02d}")
    )


def mrn(rng: random.Random) -> str:
    """A medical record number (7-8 digits)."""
    return str(rng.randrange(1_000_000, 99_999_999))


def accession(rng: random.Random) -> str:
    """A radiology accession number."""
    return rng.choice(("ACC", "RA", "CT")) + str(rng.randrange(10_000_000, 99_999_999))


def ssn_like(rng: random.Random) -> str:
    """An SSN-shaped number that was never issued (area 900-999)."""
    return f"{rng.randrange(900, 1000)}-{rng.randrange(10, 100)}-{rng.randrange(1000, 10000)}"


def account(rng: random.Random) -> str:
    """A hospital account or health-plan number."""
    return (
        rng.choice(("", "HP-", "ACCT-"))
        + f"{rng.randrange(10000, 99999)}-{rng.randrange(100, 999)}"
    )


def street(rng: random.Random) -> str:
    """A street address line."""
    line = f"{rng.randrange(2, 9800)} {rng.choice(STREETS)}"
    return line + (
        f", Apt {rng.randrange(1, 40)}{rng.choice('ABCD')}" if rng.random() < 0.2 else ""
    )


def email(who: Person, rng: random.Random) -> str:
    """An e-mail address at a documentation domain."""
    user = rng.choice(
        (
            f"{who.given}.{who.family}",
            f"{who.given[0]}{who.family}",
            f"{who.family}{rng.randrange(10, 99)}",
        )
    ).lower()
    return f"{user}@{rng.choice(('example.com', 'example.org', 'mail.example.net'))}"


def url(hospital: str, rng: random.Random) -> str:
    """A patient-portal or hospital web address at a documentation domain."""
    slug = "".join(ch for ch in hospital.lower().split()[0] if ch.isalpha())
    return rng.choice(
        (
            f"https://portal.{slug}.example.org/patient/{rng.randrange(10000, 99999)}",
            f"www.{slug}-health.example.org",
            f"http://{slug}.example.com/records",
        )
    )
