"""The rule pipeline's vocabulary: entity targets (``lexicon.json``) and ConText triggers
(``context_rules.json``), both shipped as package data and read once.

Targets are ``{type: {concept: [phrase, ...]}}`` plus word patterns written in a small
grammar (space-separated words; ``a|b`` alternatives; a trailing ``?`` optional, ``*`` any
number; the first word is required), compiled here to case-insensitive regular expressions
over the text: a spaCy ``Matcher`` with these optional and repeated tokens cost half of the
pipeline's time, the expressions (run only when the pattern's last word occurs) a few per
cent. Every phrase of
a finding, device, anatomy or procedure also gets its plural (``opacity`` -> ``opacities``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

#: ConText categories a trigger can have
CATEGORIES = (
    "negated",
    "uncertain",
    "historical",
    "hypothetical",
    "other",
    "current",
    "pseudo",
    "terminate",
)
_PLURAL_TYPES = ("finding", "device", "anatomy", "procedure")


@dataclass(frozen=True)
class Trigger:
    """One ConText trigger rule."""

    literal: str
    category: str
    #: forward, backward or bidirectional (None for pseudo and terminate)
    direction: str | None
    #: for a terminator: the categories whose scopes it ends (empty: all)
    categories: tuple[str, ...] = ()
    #: counts only as the first word of a sentence ("Should pneumonia develop")
    sentence_start: bool = False
    #: modifies only entities of these types (empty: all); "recommended" plans a procedure,
    #: it does not make "the tube" in "advancement of the tube is recommended" hypothetical
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lexicon:
    """Target phrases, token patterns and triggers."""

    #: (type, concept, phrase)
    phrases: tuple[tuple[str, str, str], ...]
    #: (type, concept, spaCy ``Matcher`` pattern): for a spaCy-based pipeline (the benchmark's
    #: medSpaCy TargetMatcher)
    patterns: tuple[tuple[str, str, list[dict[str, Any]]], ...]
    #: (type, concept, regular expression): the same patterns as this pipeline runs them
    word_patterns: tuple[tuple[str, str, WordPattern], ...]
    triggers: tuple[Trigger, ...]
    #: lower-cased phrase -> (type, concept), for spans found by someone else
    concepts: dict[str, tuple[str, str]] = field(default_factory=dict)


def plural(phrase: str) -> str | None:
    """The plural of a phrase's last word, or None when it already looks plural."""
    head, _, last = phrase.rpartition(" ")
    if not last.isalpha() or last.endswith(("s", "x", "sh", "ch")) or len(last) < 3:
        return None
    last = last[:-1] + "ies" if last.endswith("y") and last[-2] not in "aeiou" else last + "s"
    return f"{head} {last}" if head else last


@dataclass(frozen=True)
class WordPattern:
    """A compiled word pattern: its expression and the words one of which must occur."""

    regex: re.Pattern[str]
    #: lower-cased alternatives of the last required word (a cheap test before the search)
    anchors: tuple[str, ...]


def compile_pattern(pattern: str) -> list[dict[str, Any]]:
    """A word pattern of the lexicon's grammar as a spaCy ``Matcher`` pattern (lower case)."""
    tokens: list[dict[str, Any]] = []
    for word in pattern.split():
        op = None
        if word[-1] in "?*":
            word, op = word[:-1], word[-1]
        options = word.lower().split("|")
        spec: dict[str, Any] = (
            {"LOWER": options[0]} if len(options) == 1 else {"LOWER": {"IN": options}}
        )
        if op:
            spec["OP"] = op
        tokens.append(spec)
    return tokens


def compile_word_pattern(pattern: str) -> WordPattern:
    """A word pattern of the lexicon's grammar as a case-insensitive regular expression.

    Raises:
        ValueError: the pattern is empty or its first word is optional.
    """
    parts: list[str] = []
    anchors: tuple[str, ...] = ()
    previous = ""
    for n, word in enumerate(pattern.split()):
        op = ""
        if word[-1] in "?*":
            word, op = word[:-1], word[-1]
        if n == 0 and op:
            raise ValueError(f"pattern {pattern!r}: the first word must be required")
        options = word.lower().split("|")
        alternatives = "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))
        separator = r"\s*" if word == "-" or previous == "-" else r"\s+"
        piece = f"(?:{alternatives})" if n == 0 else f"(?:{separator}(?:{alternatives}))"
        parts.append(piece + ({"?": "?", "*": "*"}.get(op, "")))
        if not op:
            anchors = tuple(options)
        previous = word
    if not parts:
        raise ValueError("empty pattern")
    regex = re.compile(r"(?<![\w-])" + "".join(parts) + r"(?![\w-])", re.IGNORECASE)
    return WordPattern(regex=regex, anchors=anchors)


def _triggers(rules: list[dict[str, Any]]) -> tuple[Trigger, ...]:
    # the same literal forward and backward in one category is one bidirectional trigger
    merged: dict[tuple[str, str, bool, tuple[str, ...]], dict[str, Any]] = {}
    for rule in rules:
        key = (
            rule["literal"].lower(),
            rule["category"],
            bool(rule.get("sentence_start")),
            tuple(rule.get("types", ())),
        )
        if key in merged and merged[key]["direction"] != rule.get("direction"):
            merged[key]["direction"] = "bidirectional"
            continue
        merged.setdefault(key, dict(rule))
    return tuple(
        Trigger(
            literal=literal,
            category=category,
            direction=rule.get("direction"),
            categories=tuple(rule.get("categories", ())),
            sentence_start=start,
            types=types,
        )
        for (literal, category, start, types), rule in merged.items()
    )


@lru_cache(maxsize=1)
def load_lexicon() -> Lexicon:
    """The packaged lexicon and trigger rules (read once per process)."""
    package = resources.files("medsight.text.pipeline")
    targets = json.loads(package.joinpath("lexicon.json").read_text(encoding="utf-8"))
    rules = json.loads(package.joinpath("context_rules.json").read_text(encoding="utf-8"))
    phrases: dict[str, tuple[str, str, str]] = {}
    for type_, concepts in targets.items():
        if type_.startswith("_") or type_ == "patterns":
            continue
        for concept, words in concepts.items():
            for phrase in words:
                forms = [phrase.lower()]
                if type_ in _PLURAL_TYPES and (many := plural(phrase.lower())):
                    forms.append(many)
                for form in forms:
                    # the first listing of a phrase wins (explicit entries come first)
                    phrases.setdefault(form, (type_, concept, form))
    patterns = tuple(
        (p["type"], p["concept"], compile_pattern(p["pattern"])) for p in targets["patterns"]
    )
    word_patterns = tuple(
        (p["type"], p["concept"], compile_word_pattern(p["pattern"])) for p in targets["patterns"]
    )
    return Lexicon(
        phrases=tuple(phrases.values()),
        patterns=patterns,
        word_patterns=word_patterns,
        triggers=_triggers(rules["rules"]),
        concepts={form: (t, c) for form, (t, c, _) in phrases.items()},
    )
