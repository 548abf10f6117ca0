"""Section headers: where a note's sections start and which canonical section each is.

A header is a short phrase ending in a colon at the start of a line (``FINDINGS:``,
``Hospital Course:``), or a known header after the end of a sentence on the same line
(``... cough. COMPARISON: None.``), or a known header alone on its line without a colon
(``IMPRESSION``). Its words are mapped to a canonical name (the design's list: ``history``,
``comparison``, ``technique``, ``findings``, ``impression``, ``medications``, ...) by the
keyword rules below, checked in order; an all-capitals header that no rule knows opens an
``other`` section. Sub-headings inside a findings section (``Lungs:``, ``Heart and
mediastinum:``) do not open a section. Text before the first header belongs to no section;
an unheaded paragraph after an indication, comparison or technique paragraph is findings.

Hand-written rather than medspaCy's Sectionizer: medspaCy pins spaCy < 3.8, and one regular
expression over the text finds the headers without building a spaCy ``Doc`` or matcher.
"""

from __future__ import annotations

import re

from medsight.text.pipeline.annotations import Section

#: ordered (keyword pattern, canonical name): the first that matches the header's words wins
SECTION_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\bfamily (?:medical )?(?:history|hx)\b|^fh$|^fhx$", "family_history"),
        (r"\bsocial (?:history|hx)\b|^sh$", "social_history"),
        (
            r"\bpast (?:medical |surgical )?(?:history|hx)\b|^pmh|^psh$|\bmedical history\b"
            r"|\bproblem list\b",
            "past_medical_history",
        ),
        (r"\binstructions?\b", "discharge_instructions"),
        (r"\bdiagnos[ie]s\b", "discharge_diagnoses"),
        (r"\bfollow[- ]?up\b", "follow_up"),
        (r"\bmedications?\b|\bmeds\b|\bprescriptions?\b", "medications"),
        (r"\ballerg", "allergies"),
        (r"\bhospital course\b|^course\b|\bcourse in hospital\b", "hospital_course"),
        (r"\bfindings?\b|^report$|\bwet read\b", "findings"),
        (
            r"\bimpressions?\b|\bconclusions?\b|\bsummary\b|\bopinion\b|\binterpretation\b"
            r"|\bassessment\b",
            "impression",
        ),
        (r"\bcomparisons?\b|\bprior stud(?:y|ies)\b|\breference exam", "comparison"),
        (
            r"\bindications?\b|\bhistory\b|\bhx\b|\breason\b|\bclinical information\b"
            r"|\bchief complaint\b|^cc$|^hpi$|\bpresent illness\b|\bclinical\b",
            "history",
        ),
        (
            r"\btechnique\b|\bprotocol\b|\bprocedure\b|\bexamination\b|\bexam\b|\bstudy\b",
            "technique",
        ),
    )
)
#: sub-headings of a findings section: a sentence break, not a new section
SUBHEADINGS = frozenset(
    {
        "lungs",
        "lung",
        "lungs and airways",
        "airways",
        "pleura",
        "pleural",
        "heart",
        "heart and mediastinum",
        "mediastinum",
        "mediastinum and hila",
        "hila",
        "cardiovascular",
        "bones",
        "osseous structures",
        "musculoskeletal",
        "soft tissues",
        "upper abdomen",
        "abdomen",
        "chest wall",
        "thyroid",
        "lines and tubes",
        "tubes and lines",
        "devices",
        "support devices",
        "vessels",
        "lungs and pleura",
        "lines",
    }
)
#: an all-capitals header that describes the exam (``PA AND LATERAL CHEST RADIOGRAPH:``)
#: introduces the findings in MIMIC-style reports
_EXAM_WORDS = re.compile(
    r"\b(?:radiographs?|views?|films?|chest|portable|frontal|supine|upright)\b"
)

#: sections that end at their first blank line when no header follows it
ORPHAN_PARENTS = frozenset({"history", "comparison", "technique"})
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_HEADER = re.compile(
    r"(?:^|(?<=[.!?] )|(?<=[.!?]  ))[ \t]*"
    r"(?P<header>[A-Za-z][A-Za-z /&,'()-]{0,48}?)[ \t]*:(?=[ \t\n]|$)",
    re.MULTILINE,
)
_BARE_HEADER = re.compile(r"^[ \t]*(?P<header>[A-Z][A-Z /&]{2,40}?)[ \t]*$", re.MULTILINE)


def section_name(header: str, *, line_start: bool = True) -> str | None:
    """The canonical section a header opens, or None if it is not a section header.

    Args:
        header: the header's words without the colon (``Hospital Course``).
        line_start: whether the header starts its line (unknown all-capitals headers count
            only there).

    Returns:
        A canonical name, ``"other"`` for an unknown all-capitals header at a line start,
        ``""`` for a sub-heading (a break, no new section), or None.
    """
    words = " ".join(header.lower().replace("_", " ").split())
    if len(words.split()) > 8:
        return None
    if words in SUBHEADINGS:
        return ""
    for pattern, name in SECTION_RULES:
        if pattern.search(words):
            return name
    letters = [c for c in header if c.isalpha()]
    if line_start and len(letters) >= 2 and all(c.isupper() for c in letters):
        return "findings" if _EXAM_WORDS.search(words) else "other"
    return None


def find_headers(text: str) -> list[tuple[int, int, str]]:
    """Every header in ``text``: ``(start, end, canonical name)``; end is after the colon.

    Sub-headings are returned with the name ``""`` (they break sentences only).
    """
    found: dict[int, tuple[int, int, str]] = {}
    for match in _HEADER.finditer(text):
        start = match.start("header")
        line_start = start == 0 or text.rfind("\n", 0, start) >= text.rfind(".", 0, start)
        line_start = line_start and not text[text.rfind("\n", 0, start) + 1 : start].strip()
        name = section_name(match.group("header"), line_start=line_start)
        if name is None:
            continue
        if not line_start and not match.group("header")[0].isupper():
            continue
        found[start] = (start, match.end(), name)
    for match in _BARE_HEADER.finditer(text):
        start = match.start("header")
        if start in found:
            continue
        name = section_name(match.group("header"), line_start=True)
        # a bare all-capitals line is a header only if a rule knows it (not "FINAL REPORT")
        if name in (None, "", "other") or (
            name == "findings" and "FINDING" not in match.group("header")
        ):
            continue
        found[start] = (start, match.end("header"), name)
    return [found[k] for k in sorted(found)]


def sections_of(text: str, headers: list[tuple[int, int, str]]) -> list[Section]:
    """The sections the headers open: each runs to the next section header or the end.

    A short header section (`ORPHAN_PARENTS`: indication, comparison, technique) ends at its
    first blank line; what follows it without a header of its own is a ``findings`` section
    whose header is empty (``start == body_start``): MIMIC-style reports often write the
    findings as an unheaded paragraph after the indication.
    """
    opening = [h for h in headers if h[2]]
    sections = []
    for i, (start, end, name) in enumerate(opening):
        stop = opening[i + 1][0] if i + 1 < len(opening) else len(text)
        if name in ORPHAN_PARENTS:
            orphan = _orphan_paragraph(text, end, stop)
            if orphan is not None:
                body_end = len(text[: orphan[0]].rstrip())
                sections.append(Section(name, start, max(body_end, end), end))
                sections.append(Section("findings", orphan[1], orphan[2], orphan[1]))
                continue
        body_end = len(text[:stop].rstrip())
        sections.append(Section(name=name, start=start, end=max(body_end, end), body_start=end))
    return sections


def _orphan_paragraph(text: str, body_start: int, stop: int) -> tuple[int, int, int] | None:
    """(blank line, start, end) of unheaded text after the first paragraph of a section."""
    body = text[body_start:stop]
    first = len(body) - len(body.lstrip())
    blank = _BLANK_LINE.search(body, first)
    if blank is None:
        return None
    rest = body[blank.end() :]
    if not rest.strip():
        return None
    start = body_start + blank.end() + len(rest) - len(rest.lstrip())
    return body_start + blank.start(), start, len(text[:stop].rstrip())


def find_sections(text: str) -> list[Section]:
    """The sections of ``text`` in order (none if it has no header)."""
    return sections_of(text, find_headers(text))
