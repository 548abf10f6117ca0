"""Detectors for hospitals and other locations: "X Hospital", "X Medical Center", "St. X's",
"X Clinic"; cities and states from the gazetteer; "City, ST"; places after "lives in",
"born in", "moved from".

Hand-written for the same reasons as `pattern_rules` (no de-identification model or Philter
offline; the rules are the baseline a trained PHI tagger is compared against). A city that is
also a word or a name ("Mobile", "Jackson") counts only after "in"/"from"/"near" or before
", ST"; "Cardiology Clinic" or "the hospital" names no place and is left alone.
"""

from __future__ import annotations

import re
from functools import lru_cache

from medsight.text.deid.gazetteer import gazetteer

Span = tuple[int, int, str]

_SUFFIX = (
    r"(?:Hospital|Hospitals|Medical\s+Center|Medical\s+Centre|Health\s+Center|Health\s+System"
    r"|Healthcare|Health\s+Care|Clinic|Clinics|Infirmary|Memorial|Rehabilitation\s+(?:Center|Hospital)"
    r"|Rehab\s+Center|Nursing\s+Home|Nursing\s+(?:and\s+Rehabilitation\s+)?(?:Facility|Center)"
    r"|Care\s+Center|Surgical\s+Center|Surgery\s+Center|Cancer\s+Center|Cancer\s+Institute"
    r"|Heart\s+Institute|Institute|Medical\s+Group|Medical\s+Associates|Hospice|Health|Sanatorium"
    r"|Urgent\s+Care|Family\s+Practice|Physicians|Pediatrics|Assisted\s+Living|Associates"
    r"|Partners|Manor"
    # "Mercy General", "Tampa General": not "General: well" nor "General Surgery"
    r"|General(?![ \t]*:|[ \t]+(?:[Ss]urgery|[Mm]edicine|[Aa]ppearance|[Aa]nesthesia"
    r"|[Pp]ediatrics)))"
)
_HOSPITAL = re.compile(
    r"(?P<h>(?:(?:St\.?|Saint|Mount|Mt\.?)\s+)?"
    r"(?:(?!(?:Hospitals?|Clinics?|Center|Centre|Infirmary)\b)[A-Z][\w'’&-]*\s+"
    r"(?:(?:of|the|and|for|&|de|la)\s+)*){1,5}"
    rf"{_SUFFIX})\b"
)
_HOSPITAL_SUFFIX_FIRST = re.compile(
    r"\b(?:Hospital|Clinic|Medical\s+Center|Institute)\s+(?:of|for)\s+(?:the\s+)?"
    r"[A-Z][\w'’]*(?:\s+(?:of\s+)?[A-Z][\w'’]*){0,4}"
)
_SAINT = re.compile(r"\b(?:St\.?|Saint)\s+[A-Z][a-z]+(?:'s|’s)")
#: words that alone in front of a suffix name no particular place ("Cardiology Clinic")
_GENERIC = frozenset(
    """The A An Our This That Outside Local Community General Regional Memorial University
    County State City Children's Women's Veterans VA Cardiology Pulmonary Oncology Surgery
    Surgical Outpatient Inpatient Rehabilitation Rehab Psychiatric Mental Health Medical
    Dental Eye Urgent Primary Care Family Internal Medicine Pain Wound Sleep Anticoagulation
    Coumadin Diabetes Heart Cancer Dialysis Infusion Transplant Hepatology Neurology
    Nephrology Endocrinology Rheumatology Dermatology Orthopedic Orthopedics Urology GI ENT
    OB GYN OB/GYN Prenatal Pediatric Geriatric Memory Behavioral Addiction Methadone Smoking
    Cessation Weight Lipid Hypertension Failure Vascular Spine Sports Physical Therapy
    Occupational Speech Walk-in Free Discharge Follow-up Followup Emergency Department
    Hospitalist ICU Teaching Academic Tertiary Another Other Same Previous Prior Clinic
    Hospital Breast Lung Liver Kidney Chest Allergy Infectious Disease Diseases Travel
    Vaccine Immunization Women Men Senior Student Employee Nursing Home Skilled Long-term
    Term Long Short Acute Chronic Day Night At In To From For And Of With Seen Admitted
    Transferred Followed Discharged Patient Patients His Her Their""".split()  # noqa: SIM905
)
_LOCATION_CONTEXT = re.compile(
    r"\b(?:lives|living|live|resides|residing|resident|born|moved|relocated|travell?ed|visiting"
    r"|native|originally|hometown|home\s+town|grew\s+up|immigrated|emigrated|works|working)"
    r"\s+(?:in|from|to|of|at|near)\s+(?:the\s+)?"
    r"(?P<place>[A-Z][\w'’-]+(?:[ \t]+[A-Z][\w'’-]+){0,2})"
)
_PLACE_BEFORE = r"(?:in|from|near|to|at|of|visiting|around|outside)\s+(?:the\s+)?"
#: endings of English place names: an unknown capitalised word with one of them after "in",
#: "from", "near" is a town ("Riverton", "Fairmont", "Cedar Falls") even when not listed
_TOPONYM = re.compile(
    r"\b(?:in|from|near|to|at|of|outside|around|visiting)[ \t]+(?P<place>(?:[A-Z][a-z]+[ \t]+)?"
    r"[A-Z][a-z]*(?:ville|ton|town|burg|burgh|borough|boro|field|field|ford|wood|dale|vale|mont"
    r"|haven|port|view|ridge|brook|land|chester|ham|bury|shire|mouth|minster|stead|worth|ley|by"
    r"|creek|crest|hurst|ington|polis|grove|hills?|falls|springs|heights|beach|harbor|lake|rock"
    r"|water|side)(?:[ \t]+(?:Falls|Springs|Heights|Hills|Beach|City|Lake|Park|Harbor|Junction))?"
    r"|[A-Z][a-z]+[ \t]+(?:Falls|Springs|Heights|Hills|Beach|City|Harbor|Junction|Creek|Grove"
    r"|Valley|Rapids|Bluffs|Landing|Crossing))\b"
)
_BEFORE_CREDENTIAL = re.compile(r",?[ \t]*(?:M\.?D|D\.?O|R\.?N|NP|PA|PhD|DPT|APRN)\b")
#: state codes that are also credentials: after a city that is also a surname, a name
_CREDENTIAL_STATES = frozenset({"MD", "PA", "MS"})
#: two-letter state codes that are also words or credentials ("Smith, MD", "IN", "OR"):
#: after a comma they count only when the word before is a listed city
_AMBIGUOUS_STATES = frozenset(
    """MD PA OR IN ME OK CO HI LA DE MA MS ID NE SC AL AR DC PR OH MO VA ND SD GA NP""".split()  # noqa: SIM905
)


def find_places(text: str) -> list[Span]:
    """Every hospital and location in ``text`` as ``(start, end, type)`` spans."""
    spans: list[Span] = []
    for match in _HOSPITAL.finditer(text):
        start, end = _trim_generic(text, *match.span("h"))
        if start is not None:
            spans.append((start, end, "HOSPITAL"))
    spans.extend((*m.span(), "HOSPITAL") for m in _HOSPITAL_SUFFIX_FIRST.finditer(text))
    spans.extend((*m.span(), "HOSPITAL") for m in _SAINT.finditer(text))
    patterns = _place_patterns()
    for start, end in patterns.cities(text):
        context = patterns.place_before.search(text, max(0, start - 20), start)
        followed = patterns.state_after.match(text, end)
        if text[start:end] in gazetteer().ambiguous_cities and context is None and followed is None:
            continue
        spans.append((start, end, "LOCATION"))
    spans.extend((*m.span(), "LOCATION") for m in patterns.state.finditer(text))
    for match in patterns.city_state.finditer(text):
        city_start, city_end = match.span("city")
        words = match.group("city").split()
        while words and words[0] in gazetteer().common_words:
            city_start = text.index(words[0], city_start) + len(words[0]) + 1
            words = words[1:]
        city = " ".join(words)
        if not words or _is_generic(city):
            continue
        code = match.group("code")
        if code in _CREDENTIAL_STATES and city in gazetteer().ambiguous_cities:
            continue  # "Gilbert, MD" is a doctor
        if code in _AMBIGUOUS_STATES and city not in gazetteer().cities:
            continue
        spans.append((city_start, city_end, "LOCATION"))
        spans.append((*match.span("code"), "LOCATION"))
    for match in _TOPONYM.finditer(text):
        if _BEFORE_CREDENTIAL.match(text, match.end()):
            continue  # "sent to Anselm Brightwater MD": a doctor, not a town
        words = match.group("place").split()
        start = match.start("place")
        if words[0] in gazetteer().common_words and len(words) > 1:
            start = text.index(words[1], start)
            words = words[1:]
        if not all(word in gazetteer().common_words for word in words):
            spans.append((start, match.end("place"), "LOCATION"))
    for match in _LOCATION_CONTEXT.finditer(text):
        if _BEFORE_CREDENTIAL.match(text, match.end()):
            continue
        place = match.group("place")
        words = place.split()
        while words and words[-1] in gazetteer().common_words:
            words.pop()
        if words and words[0] not in gazetteer().common_words:
            start = match.start("place")
            spans.append((start, start + len(" ".join(words)), "LOCATION"))
    return spans


def _trim_generic(text: str, start: int, end: int) -> tuple[int | None, int]:
    """Drop leading generic words ("the", "our") from a hospital name; None if all generic."""
    name = text[start:end]
    words = name.split()
    suffix_words = re.fullmatch(rf".*?({_SUFFIX})", name, re.DOTALL)
    suffix_len = len(suffix_words.group(1).split()) if suffix_words else 1
    lead = words[: len(words) - suffix_len]
    while lead and lead[0] in {"The", "A", "An", "Our", "This", "That", "At", "In", "To", "From"}:
        start = text.index(lead[0], start) + len(lead[0])
        while text[start].isspace():
            start += 1
        lead = lead[1:]
    if all(
        word.strip(".,") in _GENERIC or word in {"of", "the", "and", "for", "&"} for word in lead
    ):
        return None, end
    return start, end


def _is_generic(words: str) -> bool:
    return all(word in gazetteer().common_words or word in _GENERIC for word in words.split())


class _PlacePatterns:
    def __init__(self) -> None:
        places = gazetteer()
        states = "|".join(re.escape(s) for s in sorted(places.states, key=len, reverse=True))
        codes = "|".join(sorted(places.state_abbreviations))
        # a dict from first word to names beats a 450-way regular expression alternation
        self.by_first_word: dict[str, list[str]] = {}
        for city in sorted(places.cities, key=len, reverse=True):
            self.by_first_word.setdefault(city.split()[0].rstrip("."), []).append(city)
        self.state = re.compile(rf"(?<![\w-])(?:{states})(?![\w-])")
        self.state_after = re.compile(rf",\s*(?:{states}|{codes})\b")
        self.place_before = re.compile(rf"\b{_PLACE_BEFORE}$")
        self.city_state = re.compile(
            rf"\b(?P<city>[A-Z][a-z]+(?:[ \t]+[A-Z][a-z]+){{0,2}}),[ \t]*(?P<code>{codes})\b(?!-)"
        )

    def cities(self, text: str) -> list[tuple[int, int]]:
        """Spans of the listed cities in ``text`` (whole words, the longest name first)."""
        found = []
        for match in _CAPITALISED.finditer(text):
            for city in self.by_first_word.get(match.group(0), ()):
                end = match.start() + len(city)
                if text.startswith(city, match.start()) and not _WORD_CHAR.match(text, end):
                    found.append((match.start(), end))
                    break
        return found


_CAPITALISED = re.compile(r"(?<![\w-])[A-Z][\w'’.-]*?(?=[\s,;:)]|$|\.\s|'s)", re.MULTILINE)
_WORD_CHAR = re.compile(r"[\w-]")


@lru_cache(maxsize=1)
def _place_patterns() -> _PlacePatterns:
    return _PlacePatterns()
