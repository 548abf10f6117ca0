"""Detectors for the PHI written in fixed shapes: dates, ages over 89, identifiers, phone and
fax numbers, e-mail addresses, URLs and street addresses.

Hand-written regular expressions rather than a de-identification library: Philter crashes
offline (it fetches an NLTK tagger at run time), no trained de-identification model can be
downloaded here, and these rules are the baseline that a tagger trained on PHI spans
(``medsight train --task text-ner --labels phi``) is compared against. They are character
patterns, so spaCy's token Matcher would add its import time and nothing they need.
Recall first: a long digit run or an identifier after a keyword is masked even when unsure.
"""

from __future__ import annotations

import re

from medsight.text.deid.date_formats import find_dates
from medsight.text.deid.gazetteer import gazetteer

Span = tuple[int, int, str]

_AGE_NUMBER = r"(?P<age>9\d|1[0-4]\d)"
_NINETY_WORDS = (
    r"(?P<age>(?:ninety|one hundred)(?:[-\s](?:one|two|three|four|five|six|seven|eight|nine))?)"
)
_AGE_PATTERNS = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        rf"\b{_AGE_NUMBER}\s*-?\s*(?:years?|yrs?|y)\.?\s*-?\s*(?:old|of\s+age|o\b)",
        rf"\b{_AGE_NUMBER}\s*(?:yo|y/o|y\.o\.?|yoM|yoF|yo[mf])\b",
        rf"\b{_AGE_NUMBER}\s*(?:M|F|male|female|man|woman)\b(?=[\s,.])",
        rf"\b(?:aged?|age\s*:|age\s+of|age\s+is)\s*{_AGE_NUMBER}\b",
        rf"\b{_NINETY_WORDS}[-\s]+years?[-\s]+old\b",
        r"\b(?:in\s+(?:his|her|their|the)\s+)(?P<age>9\d'?s|nineties)\b",
        r"\b(?P<age>nonagenarian|centenarian)\b",
        # "she is 93", "the patient turned 100" (not "HR is 95", "sat was 92%")
        rf"\b(?:she|he|patient|pt|who|they)\s+(?:is|was|turned|turns|will\s+be)\s+{_AGE_NUMBER}\b"
        r"(?![ \t]*(?:%|mg|kg|lbs?|cm|mm|bpm|mmHg|/|\.\d|percent))",
    )
)

_ID_KEYWORD = (
    r"(?:MRN|MR\s*#|Med(?:ical)?\s+Rec(?:ord)?s?(?:\s+(?:Number|No\.?|#))?|Record\s*(?:#|No\.?)"
    r"|Unit\s+(?:Number|No\.?)|Acct|Account(?:\s+(?:Number|No\.?))?|Accession(?:\s+(?:Number|No\.?))?"
    r"|Acc\.?|SSN|SS#|Social\s+Security(?:\s+(?:Number|No\.?))?|Member(?:\s+ID)?|Subscriber(?:\s+ID)?"
    r"|Policy(?:\s+(?:Number|No\.?))?|(?:Health\s+)?Plan(?:\s+(?:Number|No\.?|ID))?"
    r"|Group(?:\s+(?:Number|No\.?))?|Insurance(?:\s+(?:ID|Number|No\.?))?|Beneficiary(?:\s+(?:ID|Number))?"
    r"|Medicare|Medicaid|License(?:\s+(?:Number|No\.?))?|DEA|NPI|Encounter(?:\s+(?:ID|Number|No\.?))?"
    r"|Visit(?:\s+(?:ID|Number|No\.?))?|Patient\s+ID|Pt\.?\s+ID|Case(?:\s+(?:Number|No\.?))?"
    r"|Order(?:\s+(?:Number|No\.?))?|Specimen(?:\s+(?:ID|Number|No\.?))?|Lab\s+(?:ID|Number|No\.?)"
    r"|Requisition|Claim(?:\s+(?:Number|No\.?))?|Certificate(?:\s+(?:Number|No\.?))?"
    r"|Serial(?:\s+(?:Number|No\.?))?|Device\s+ID|VIN|ID|Identifier|Ref(?:erence)?)"
)
_ID_AFTER_KEYWORD = re.compile(
    rf"\b{_ID_KEYWORD}\s*(?:#|number|no\.?|num\.?)?\s*[:#=]?\s*(?:is\s+)?"
    r"(?P<id>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{2,}[A-Z0-9])(?![\w])",
    re.IGNORECASE,
)
_SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
_LONG_DIGITS = re.compile(r"(?<![\w.,/-])\d{7,}(?![\w]|[.,]\d)")
_LETTERS_DIGITS = re.compile(r"(?<![\w-])[A-Z]{1,4}-?\d{5,}[A-Z]?(?![\w-])")
#: digit groups joined by hyphens, seven digits or more ("32603-917" after a misspelt
#: "Accoutn:"); a date or phone number of the same width keeps its own type (priority)
_DIGIT_GROUPS = re.compile(r"(?<![\w-])(?=(?:-?\d){7})\d{2,}(?:-\d+){1,3}(?![\w-])")
#: an identifier after "#" or "No." whatever the word before it ("Act #: 16120-872")
_ID_AFTER_HASH = re.compile(
    r"(?:#|\bNo\.)[ \t]*:?[ \t]*(?P<id>[A-Z0-9-]*\d{4,}[A-Z0-9-]*)(?![\w-])"
)
#: hyphenated codes with letters and at least five digits ("HP-53257-721", "AB-1234-56")
_CODE = re.compile(
    r"(?<![\w-])(?=[A-Z0-9-]*[A-Z])(?=(?:[A-Z-]*\d){5})[A-Z0-9]+(?:-[A-Z0-9]+)+(?![\w-])"
)

_PHONE_NUMBER = (
    r"(?<![\w-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}"
    r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,5})?(?![\w-])"
)
_PHONE = re.compile(_PHONE_NUMBER, re.IGNORECASE)
_PHONE_AFTER_KEYWORD = re.compile(
    r"\b(?:phone|tel|telephone|cell|mobile|pager|beeper|fax|facsimile|contact|call)\b[^\n\d]{0,12}"
    r"(?P<num>\d{10}|\d{3}[\s.-]\d{4}|x\d{3,5})(?![\w-])",
    re.IGNORECASE,
)
_FAX_CONTEXT = re.compile(r"\b(?:fax|facsimile|fx)\b[^\n]{0,16}$", re.IGNORECASE)

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL = re.compile(
    r"\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'()]+"
    r"|\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:com|org|net|edu|gov|io|us|info|health|biz)\b"
    r"(?:/[^\s<>\"'()]*)?",
    re.IGNORECASE,
)
_IP = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")

_STREET_TYPE = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Court|Ct|Place|Pl|Way"
    r"|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Route|Rte|Pike"
    r"|Alley|Plaza|Loop|Crossing|Row|Path|Walk)\.?"
)
_UNIT = (
    r"(?:,?[ \t]+(?:Apt|Apartment|Unit|Suite|Ste|Room|Rm|Floor|Fl|#)\.?[ \t]*#?[ \t]*[A-Z0-9-]+)"
)
_STREET = re.compile(
    r"\b\d{1,6}[A-Z]?(?:-\d{1,4})?[ \t]+(?:(?:[NSEW]\.?|North|South|East|West)[ \t]+)?"
    r"(?:[A-Z][A-Za-z'-]+|\d+(?:st|nd|rd|th))(?:[ \t]+[A-Z][A-Za-z'-]+){0,3}[ \t]+"
    rf"{_STREET_TYPE}(?:[ \t]+(?:NE|NW|SE|SW|N|S|E|W)\b\.?)?{_UNIT}?"
)
_PO_BOX = re.compile(r"\b(?:P\.?\s?O\.?\s*Box|Post\s+Office\s+Box|PO\s+Box)\s*#?\s*\d+", re.I)
_ZIP_KEYWORD = re.compile(
    r"\b(?:zip|zip\s*code|postal\s+code)\s*:?\s*(?P<zip>\d{5}(?:-\d{4})?)\b", re.I
)


def _city_state_zip() -> re.Pattern[str]:
    places = gazetteer()
    states = "|".join(sorted(places.states | places.state_abbreviations, key=len, reverse=True))
    return re.compile(
        r"\b(?P<city>[A-Z][A-Za-z.'-]+(?:\s+[A-Z][A-Za-z.'-]+){0,2}),\s*"
        rf"(?P<state>{states})\.?\s+(?P<zip>\d{{5}}(?:-\d{{4}})?)\b"
    )


_CITY_STATE_ZIP: re.Pattern[str] | None = None


def find_patterned_phi(text: str) -> list[Span]:
    """Every date, age over 89, identifier, phone/fax number, e-mail, URL and address.

    Returns:
        ``(start, end, type)`` spans in ``text``'s offsets; they may overlap (merging decides).
    """
    global _CITY_STATE_ZIP
    spans: list[Span] = [(start, end, "DATE") for start, end in find_dates(text)]
    for pattern in _AGE_PATTERNS:
        spans.extend((*m.span("age"), "AGE") for m in pattern.finditer(text))
    spans.extend((*m.span("id"), "ID") for m in _ID_AFTER_KEYWORD.finditer(text))
    spans.extend((*m.span("id"), "ID") for m in _ID_AFTER_HASH.finditer(text))
    for pattern in (_SSN, _LONG_DIGITS, _LETTERS_DIGITS, _CODE, _DIGIT_GROUPS):
        spans.extend((*m.span(), "ID") for m in pattern.finditer(text))
    for match in _PHONE.finditer(text):
        spans.append((*match.span(), _phone_or_fax(text, match.start())))
    for match in _PHONE_AFTER_KEYWORD.finditer(text):
        spans.append((*match.span("num"), _phone_or_fax(text, match.start("num"))))
    spans.extend((*m.span(), "EMAIL") for m in _EMAIL.finditer(text))
    for match in _URL.finditer(text):
        start, end = match.span()
        while end > start and text[end - 1] in ".,;:!?":
            end -= 1
        spans.append((start, end, "URL"))
    spans.extend((*m.span(), "URL") for m in _IP.finditer(text))
    for pattern in (_STREET, _PO_BOX):
        spans.extend((*m.span(), "ADDRESS") for m in pattern.finditer(text))
    spans.extend((*m.span("zip"), "ADDRESS") for m in _ZIP_KEYWORD.finditer(text))
    if _CITY_STATE_ZIP is None:
        _CITY_STATE_ZIP = _city_state_zip()
    spans.extend((*m.span(), "ADDRESS") for m in _CITY_STATE_ZIP.finditer(text))
    return spans


def _phone_or_fax(text: str, start: int) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    return "FAX" if _FAX_CONTEXT.search(text[max(line_start, start - 24) : start]) else "PHONE"
