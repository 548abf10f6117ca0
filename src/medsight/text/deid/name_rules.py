"""Detector for names of patients, relatives and clinicians.

Evidence, strongest first: a title ("Dr.", "Mrs."), a credential after the name (", MD",
", RN"), a labelled field ("Name:", "Attending:", "Signed by:", "cc:"), a relation ("his
wife Mary", "daughter, Jane"), "patient X"; then any capitalised word in the first/last-name
gazetteer, extended to its capitalised neighbours ("John Okonkwo", "Mary-Kate O'Brien",
"J. Smith"). A listed name that is also a word or an eponym ("Will", "Brown", "Foley",
"Murphy's sign") needs one of the stronger kinds of evidence or a name beside it. Once found,
a name is masked wherever else it occurs in the note (and, through `name_words` and
`find_name_words`, in the patient's other notes). Recall first: a capitalised word the
rules are unsure of next to a name is masked with it.

Hand-written (regular expressions over word tokens) for the reasons `pattern_rules` gives;
spaCy's Matcher would add its tokenizer and import time without adding evidence.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass

from medsight.text.deid.gazetteer import Gazetteer, gazetteer

Span = tuple[int, int, str]

#: a word: letters of any script ("Rémy", "Øyvind"), apostrophes and hyphens inside
_WORD = re.compile(r"[^\W\d_][^\W\d_'’]*(?:['’][^\W\d_]+)*(?:-[^\W\d_][^\W\d_'’]*)*")
_TITLE = re.compile(
    r"\b(?:Dr|Drs|Doctor|Mr|Mrs|Ms|Miss|Mx|Prof|Professor|Rev|Reverend|Sr|Sister|Fr|Father"
    r"|Nurse|Judge|Capt|Sgt|Officer)\b\.?[ \t]+",
    re.IGNORECASE,
)
_CREDENTIALS = (
    r"(?:M\.?D\.?|D\.?O\.?|R\.?N\.?|N\.?P\.?|PA-C|PA|Ph\.?D\.?|MBBS|FACP|FACS|FACC|DDS"
    r"|PharmD|APRN|CRNA|LPN|CNM|LCSW|MSW|DPM|MPH|BSN|MSN|DNP|FNP|FNP-BC|ANP|CNA)\b"
)
#: ", MD" after a name; "PA", "DO" and "NP" without the comma only when no lower-case word
#: follows ("PA catheter", "DO not")
_CREDENTIAL = re.compile(
    rf",[ \t]*{_CREDENTIALS}|[ \t]+(?!(?:PA|DO|NP)\b){_CREDENTIALS}"
    r"|[ \t]+(?:PA|DO|NP)\b(?![ \t]+[a-z])"
)
_FIELD = re.compile(
    r"(?:^|(?<=[\s(;,]))(?:Patient(?:'s)?\s+Name|Name|Patient|Pt|Attending(?:\s+Physician)?|Resident"
    r"|Fellow|Intern|PCP|Primary\s+Care(?:\s+(?:Physician|Provider|Doctor))?|Referring(?:\s+(?:Physician|Provider|MD|Doctor))?"
    r"|Ordering(?:\s+(?:Physician|Provider|MD))?|Surgeon|Assistant|Anesthesiologist|Anesthesia|Physician"
    r"|Provider|Clinician|Radiologist|Pathologist|Dictated\s+by|Transcribed\s+by|Signed\s+by"
    r"|Electronically\s+signed\s+by|E-signed\s+by|Reviewed\s+by|Seen\s+by|Author|Cosigned\s+by"
    r"|Co-signed\s+by|Verified\s+by|Read\s+by|Interpreted\s+by|Approved\s+by|Attested\s+by|Signed"
    r"|cc|CC|Copy\s+to|Contact|Emergency\s+Contact|Next\s+of\s+Kin|NOK|Guardian|Spouse|Mother"
    r"|Father|Health\s+Care\s+Proxy|Healthcare\s+Proxy|HCP|Proxy|POA|Interpreter|Nurse|RN"
    r"|Case\s+Manager|Social\s+Worker|Therapist|Pharmacist|Dietitian|Chaplain|Caregiver"
    r"|Discussed\s+with|Spoke\s+with|Called|Paged|Notified|D/w|Caller|Called\s+by|Requested\s+by"
    r"|Referred\s+by|Consulted\s+by|Referring|Re|Informant|Historian|Witness|Translator"
    r"|Accompanied\s+by|Care\s+team)"
    r"[ \t]*(?::|-|—)?[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
_RELATION = re.compile(
    r"\b(?:wife|husband|son|daughter|mother|father|sister|brother|spouse|partner|friend"
    r"|caregiver|niece|nephew|grandson|granddaughter|grandmother|grandfather|aunt|uncle|cousin"
    r"|neighbou?r|boyfriend|girlfriend|fianc[ée]e?|guardian|mom|dad|stepson|stepdaughter"
    r"|child|children|sibling|roommate|landlord|employer|coworker|pastor|POA|HCP|proxy"
    r"|student|resident|intern|fellow|scribe|technician|tech|colleague|attending|pharmacist"
    r"|chaplain|interpreter|therapist|coordinator|worker|manager|nurse)"
    r"(?:-in-law)?(?:'s)?[ \t]*,?[ \t]*(?:\(|named[ \t]+|is[ \t]+|was[ \t]+|-[ \t]*)?",
    re.IGNORECASE,
)
_PATIENT = re.compile(r"\b(?:patient|pt\.?|the\s+patient)[ \t]+", re.IGNORECASE)
#: initials before a surname: "R. Thibodeaux", "J.R. Ewing" (not "E. coli")
_INITIALS = re.compile(r"\b(?:[A-Z]\.[ \t]?){1,2}(?=[A-Z][a-z])")
#: what a person does in a note: a capitalised word (or two) before one of these verbs is a
#: name even when no list knows it ("Xiomara reports pain", "Okonkwo was seen")
_PERSON_VERB = re.compile(
    r"[ \t]+(?:reports|reported|states|stated|denies|denied|complains|endorses|endorsed|says"
    r"|said|agrees|agreed|declines|declined|understands|feels|felt|wishes|wants|prefers|lives"
    r"|asks|asked|was\s+seen|came|comes|arrived|arrives|returns|returned)\b"
)
#: a word written like a name: "Xiomara", "O'Neil", "McAdams", "Smith-Jones"; not "HFpEF"
_NAME_SHAPE = re.compile(r"(?:Mc|Mac|O['’]|D['’])?[A-Z][a-z]+(?:[-'’][A-Z][a-z]+)*")
_EPONYM_AFTER = re.compile(
    r"(?:'s|’s|s')?[ \t-]+(?:sign|syndrome|disease|test|maneuver|manoeuvre|criteria|score|scale"
    r"|fracture|procedure|operation|catheter|drain|tube|shunt|lines?|esophagus|palsy|phenomenon"
    r"|reflex|stain|tear|classification|stage|level|formula|equation|hump|point|triad|node|nodes"
    r"|ulcer|lesion|type|filter|needle|bag|pouch|device|position|incision|repair|fundoplication"
    r"|body|bodies|cell|cells|sarcoma|lymphoma|tumou?r|disorder|anomaly|deformity|contracture"
    r"|thyroiditis|encephalopathy|aneurysm|diverticulum|ring|space|canal|duct|gland|cyst|law"
    r"|rule|method|technique|approach|view|study|monitor|ultrasound|exam|examination|dressing"
    r"|mask|splint|boot|brace|stocking|stockings|agar|medium|effect|sign)\b",
    re.IGNORECASE,
)
#: words that end a name run even when capitalised
_STOP = frozenset(
    """MD DO RN NP PA PhD MBBS FACP FACS DDS APRN CRNA LPN CNM LCSW MSW CT MRI ICU ED ER OR
    PACU CCU HPI ROS PMH PSH ASA EKG ECG CXR BP HR RR SpO2 IV PO PRN BID TID QID QD QHS Jr
    Sr II III IV ID MRN SSN DOB DOS PCP HCP NOK POA DNR DNI CHF COPD CKD AKI UTI""".split()  # noqa: SIM905
)
_SUFFIXES = frozenset({"Jr", "Sr", "II", "III", "IV"})
#: lower-case words inside a name ("van", "de la", "bin")
_PARTICLES = frozenset(
    {"von", "van", "de", "del", "della", "der", "den", "di", "da", "dos", "das", "du", "le"}
    | {"la", "bin", "ibn", "al", "ter", "ten", "y"}
)
#: an identifier label right after a name: "MARGARETHE VON STRAUSS (MRN 11-22-3344)"
_BEFORE_ID = re.compile(
    r"[ \t]*[(,]?[ \t]*(?:MRN|MR#|DOB|D\.O\.B\.|SSN|Medical\s+Record|Acct|Account\s+(?:#|No))\b"
)


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    text: str


def find_names(text: str) -> list[Span]:
    """Every name in ``text`` as ``(start, end, "NAME")`` spans (a run of name words each)."""
    places = gazetteer()
    tokens = _tokens(text)
    starts = {token.start: index for index, token in enumerate(tokens)}
    ends = [token.end for token in tokens]
    marked: set[int] = set()
    strong: set[int] = set()

    def run_from(char: int, allow_lower: bool = False, limit: int = 4) -> list[int]:
        index = _token_at(starts, text, char)
        if index is None:
            return []
        return _run(tokens, text, index, places, allow_lower=allow_lower, limit=limit)

    for match in _TITLE.finditer(text):
        strong.update(run_from(match.end(), allow_lower=match.group(0).rstrip()[-1:] == "."))
    for match in _FIELD.finditer(text):
        if not match.group(0).strip():
            continue
        found = run_from(match.end(), limit=5)
        if found and _tokens_after_comma(tokens, text, found):
            found += run_from(_after_comma(text, tokens[found[-1]].end), limit=3)
        strong.update(found)
    for match in _RELATION.finditer(text):
        strong.update(run_from(match.end(), limit=3))
    for match in _INITIALS.finditer(text):
        found = run_from(match.end(), limit=2)
        if found and _bare(tokens[found[0]].text) not in places.common_words:
            start = match.start()
            strong.update(found)
            strong.update(i for i, t in enumerate(tokens[: found[0]]) if t.start >= start)
    for match in _PATIENT.finditer(text):
        strong.update(run_from(match.end(), limit=3))
    for match in _PERSON_VERB.finditer(text):
        found = _run_back(tokens, ends, text, match.start(), places)
        word = _bare(tokens[found[-1]].text) if found else ""
        if word in places.common_words or word in places.ambiguous:
            continue  # "He denies", "Family agrees"
        if found and all(_NAME_SHAPE.fullmatch(tokens[i].text) for i in found):
            strong.update(found)
    for pattern in (_CREDENTIAL, _BEFORE_ID):
        for match in pattern.finditer(text):
            strong.update(_run_back(tokens, ends, text, match.start(), places))
    for index, token in enumerate(tokens):
        if index in strong or not _capitalised(token.text):
            continue
        word = _bare(token.text)
        if not places.is_name(word) or word in places.ambiguous or word in _STOP:
            continue
        if _EPONYM_AFTER.match(text, token.end) or _hyphen_eponym(token.text, places):
            continue
        marked.update(_run(tokens, text, index, places, limit=4, backwards=True))
    marked |= strong
    _propagate(tokens, text, marked, places)
    return [(start, end, "NAME") for start, end in _runs_to_spans(tokens, text, marked)]


def name_words(text: str, spans: Iterable[tuple[int, int, str]]) -> set[str]:
    """The words of the NAME spans of ``text`` worth looking for in the patient's other notes
    (two letters or more, not an ordinary word, not "Jr")."""
    places = gazetteer()
    words = set()
    for start, end, phi_type in spans:
        if phi_type != "NAME":
            continue
        for token in _tokens(text[start:end]):
            word = _bare(token.text)
            if len(word) > 1 and word not in _SUFFIXES and word not in places.common_words:
                words.add(word)
    return words


def find_name_words(text: str, words: set[str]) -> list[Span]:
    """Every capitalised occurrence in ``text`` of a name word found in another note of the
    same patient ("Odile drove him" after "his wife Odile" elsewhere)."""
    if not words:
        return []
    places = gazetteer()
    return [
        (token.start, token.end, "NAME")
        for token in _tokens(text)
        if _capitalised(token.text)
        and _bare(token.text) in words
        and not (_bare(token.text) in places.ambiguous and _EPONYM_AFTER.match(text, token.end))
    ]


def _tokens(text: str) -> list[_Token]:
    out = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        word = match.group(0)
        for tail in ("'s", "’s", "'", "’"):
            if word.endswith(tail) and len(word) > len(tail):
                word, end = word[: -len(tail)], end - len(tail)
                break
        out.append(_Token(start, end, word))
    return out


def _token_at(starts: dict[int, int], text: str, char: int) -> int | None:
    while char < len(text) and text[char] in " \t\"'(":
        char += 1
    return starts.get(char)


def _bare(word: str) -> str:
    return word[:1] + word[1:].lower() if word.isupper() and len(word) > 1 else word


def _capitalised(word: str) -> bool:
    return word[:1].isupper()


def _is_initial(text: str, token: _Token) -> bool:
    return len(token.text) == 1 and token.text.isupper()


def _joined(text: str, left: _Token, right: _Token) -> bool:
    """Whether two tokens sit side by side in one name: spaces only, or an initial's dot."""
    gap = text[left.end : right.start]
    if left.end < len(text) and text[left.end : left.end + 2] in ("'s", "’s"):
        return False
    return gap in (" ", "  ", "\t") or (len(left.text) == 1 and gap in (". ", "."))


def _name_like(token: _Token, places: Gazetteer, *, first: bool, allow_lower: bool) -> bool:
    word = _bare(token.text)
    if word in _STOP or token.text in _STOP:
        return False
    if not _capitalised(token.text):
        return first and allow_lower and word.lower() not in _lower_common(places)
    if places.is_name(word) or len(word) == 1:
        return True
    return word not in places.common_words


def _lower_common(places: Gazetteer) -> frozenset[str]:
    return frozenset(word.lower() for word in places.common_words)


def _run(
    tokens: list[_Token],
    text: str,
    index: int,
    places: Gazetteer,
    *,
    allow_lower: bool = False,
    limit: int = 4,
    backwards: bool = False,
) -> list[int]:
    """Token indices of the name starting at ``index`` (and, if asked, the words before it)."""
    if not _name_like(tokens[index], places, first=True, allow_lower=allow_lower):
        return []
    found = [index]
    last = index
    while len(found) < limit and last + 1 < len(tokens):
        step = _next_name_word(tokens, text, last, places)
        if not step:
            break
        found += step
        last = step[-1]
    if backwards:
        first = index
        while (
            len(found) < limit + 1
            and first > 0
            and _joined(text, tokens[first - 1], tokens[first])
            and _capitalised(tokens[first - 1].text)
            and _name_like(tokens[first - 1], places, first=False, allow_lower=False)
            or (
                first > 0
                and _joined(text, tokens[first - 1], tokens[first])
                and places.is_name(_bare(tokens[first - 1].text))
                and _bare(tokens[first - 1].text) not in places.ambiguous
            )
        ):
            first -= 1
            found.append(first)
    return sorted(found)


def _run_back(
    tokens: list[_Token], ends: list[int], text: str, end: int, places: Gazetteer
) -> list[int]:
    """The name right before a credential (", MD"): up to four capitalised words."""
    last = bisect.bisect_right(ends, end) - 1
    if last < 0:
        return []
    if text[tokens[last].end : end].strip(" \t,.") or not _capitalised(tokens[last].text):
        return []
    found = [last]
    while len(found) < 5 and found[0] > 0:
        first = found[0]
        prior = tokens[first - 1]
        if not _joined(text, prior, tokens[first]):
            break
        if _capitalised(prior.text) and _name_like(prior, places, first=False, allow_lower=False):
            found.insert(0, first - 1)
        elif (
            prior.text.lower() in _PARTICLES
            and first > 1
            and _joined(text, tokens[first - 2], prior)
            and _capitalised(tokens[first - 2].text)
        ):
            found[:0] = [first - 2, first - 1]
        else:
            break
    return found if _name_like(tokens[last], places, first=False, allow_lower=False) else []


def _next_name_word(tokens: list[_Token], text: str, last: int, places: Gazetteer) -> list[int]:
    """The token(s) continuing a name after ``last``: a capitalised word, or a particle and
    the capitalised word after it ("Ludwig van Beethoven", "Margarethe VON STRAUSS")."""
    following = tokens[last + 1]
    if not _joined(text, tokens[last], following):
        return []
    if _capitalised(following.text) and _bare(following.text).lower() in _PARTICLES:
        pass  # "VON STRAUSS": decided by the word after it, below
    elif _capitalised(following.text):
        return [last + 1] if _name_like(following, places, first=False, allow_lower=False) else []
    if following.text.lower() not in _PARTICLES or last + 2 >= len(tokens):
        return []
    after = tokens[last + 2]
    if (
        _joined(text, following, after)
        and _capitalised(after.text)
        and _name_like(after, places, first=False, allow_lower=False)
    ):
        return [last + 1, last + 2]
    return []


def _tokens_after_comma(tokens: list[_Token], text: str, found: list[int]) -> bool:
    """ "Name: Smith, John": a single surname followed by a comma and more capitalised words."""
    end = tokens[found[-1]].end
    return len(found) == 1 and text[end : end + 2] in (", ", ",")


def _after_comma(text: str, end: int) -> int:
    return end + (2 if text[end : end + 2] == ", " else 1)


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t")
    return not before or before[-1] in ".!?:\n;*-•"


def _hyphen_eponym(word: str, places: Gazetteer) -> bool:
    """ "Stevens-Johnson", "Jackson-Pratt": joined eponyms, not a double-barrelled surname."""
    parts = word.split("-")
    return len(parts) > 1 and any(_bare(part) in places.eponyms for part in parts)


def _propagate(tokens: list[_Token], text: str, marked: set[int], places: Gazetteer) -> None:
    """Mask every other capitalised occurrence of a word already found in a name."""
    found = {
        _bare(tokens[i].text)
        for i in marked
        if len(tokens[i].text) > 1 and _bare(tokens[i].text) not in _SUFFIXES
    }
    if not found:
        return
    for index, token in enumerate(tokens):
        if index in marked or not _capitalised(token.text):
            continue
        word = _bare(token.text)
        if word not in found:
            continue
        if word in places.common_words and _sentence_start(text, token.start):
            continue
        if word in places.ambiguous and _EPONYM_AFTER.match(text, token.end):
            continue
        marked.add(index)
        # and the unlisted words beside it ("Leopold Nwachukwu" once "Nwachukwu" is known)
        marked.update(_run(tokens, text, index, places, limit=3, backwards=True))


def _runs_to_spans(tokens: list[_Token], text: str, marked: set[int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for index in sorted(marked):
        token = tokens[index]
        end = token.end
        if len(token.text) == 1 and text[end : end + 1] == ".":
            end += 1
        if spans and index - 1 in marked and _joined(text, tokens[index - 1], token):
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((token.start, end))
    return spans
