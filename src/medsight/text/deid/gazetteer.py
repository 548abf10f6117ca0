"""The word lists the rules match and surrogates draw from (``gazetteer.json``).

Hand-written rather than downloaded (nothing can be fetched at run time, and no name list
ships with the stack): about 900 US first names and 1,300 last names of many origins, about
450 US and 90 large world cities, the US states, street names for surrogate addresses,
capitalised common and clinical words that are also names (masked only with context) and
medical eponyms (Foley, Murphy's sign).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Gazetteer:
    """The lists, as sets for matching and sorted tuples for keyed surrogate draws."""

    first_names: frozenset[str]
    last_names: frozenset[str]
    #: names that are also ordinary or clinical words: masked only with context
    ambiguous: frozenset[str]
    #: medical eponyms ("Foley", "Murphy"): part of `ambiguous`
    eponyms: frozenset[str]
    common_words: frozenset[str]
    cities: frozenset[str]
    #: cities that are also words or names ("Mobile", "Jackson"): masked only after "in"/"from"
    ambiguous_cities: frozenset[str]
    states: frozenset[str]
    state_abbreviations: frozenset[str]
    surrogate_first: tuple[str, ...]
    surrogate_last: tuple[str, ...]
    surrogate_cities: tuple[str, ...]
    street_names: tuple[str, ...]

    def is_name(self, word: str) -> bool:
        """Whether ``word`` (any case) is a listed first or last name."""
        title = word[:1].upper() + word[1:].lower() if word.isupper() else word
        return title in self.first_names or title in self.last_names or word in self.last_names


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The package's gazetteer, loaded once."""
    raw = json.loads(
        resources.files("medsight.text.deid").joinpath("gazetteer.json").read_text("utf-8")
    )
    first = frozenset(raw["first_names"])
    last = frozenset(raw["last_names"])
    common = frozenset(raw["common_words"])
    eponyms = frozenset(raw["eponyms"])
    names = first | last
    short = frozenset(name for name in names if len(name) <= 2)
    ambiguous = (names & common) | eponyms | short
    us_cities = frozenset(raw["cities"])
    cities = us_cities | frozenset(raw["world_cities"])
    ambiguous_cities = frozenset(
        city for city in cities if city in common or city in names or city in raw["states"]
    )
    unambiguous_first = tuple(sorted(first - ambiguous - last))
    unambiguous_last = tuple(sorted(last - ambiguous - first))
    return Gazetteer(
        first_names=first,
        last_names=last,
        ambiguous=ambiguous,
        eponyms=eponyms,
        common_words=common,
        cities=cities,
        ambiguous_cities=ambiguous_cities,
        states=frozenset(raw["states"]),
        state_abbreviations=frozenset(raw["state_abbreviations"]),
        surrogate_first=unambiguous_first,
        surrogate_last=unambiguous_last,
        # US cities only: a surrogate sits beside a US state code ("Worcester, MA")
        surrogate_cities=tuple(sorted(us_cities - ambiguous_cities)),
        street_names=tuple(s for s in raw["street_names"] if s not in common and s not in names),
    )
