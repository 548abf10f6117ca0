"""The rule pipeline's vocabulary: entity targets (``lexicon.json``) and ConText triggers
(``context_rules.json``), both shipped as package data and read once.

Targets are ``{type: {concept: [phrase, ...]}}`` plus token patterns written in a small
grammar (space-separated tokens; ``a|b`` alternatives; a trailing ``?`` optional, ``*`` any
number), compiled here to spaCy ``Matcher`` patterns on lower-cased tokens. Every phrase of
a finding, device, anatomy or procedure also gets its plural (``opacity`` -> ``opacities``).
"""

from __future__ import annotations

import json
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


@dataclass(frozen=True)
class Lexicon:
    """Target phrases, token patterns and triggers."""

    #: (type, concept, phrase)
    phrases: tuple[tuple[str, str, str], ...]
    #: (type, concept, spaCy Matcher pattern)
    patterns: tuple[tuple[str, str, list[dict[str, Any]]], ...]
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


def compile_pattern(pattern: str) -> list[dict[str, Any]]:
    """A token pattern of the lexicon's grammar as a spaCy ``Matcher`` pattern."""
    tokens: list[dict[str, Any]] = []
    for word in pattern.split():
        op = None
        if word[-1] in "?*":
            word, op = word[:-1], word[-1]
        options = word.split("|")
        spec: dict[str, Any] = (
            {"LOWER": options[0]} if len(options) == 1 else {"LOWER": {"IN": options}}
        )
        if op:
            spec["OP"] = op
        tokens.append(spec)
    return tokens


def _triggers(rules: list[dict[str, Any]]) -> tuple[Trigger, ...]:
    # the same literal forward and backward in one category is one bidirectional trigger
    merged: dict[tuple[str, str, bool], dict[str, Any]] = {}
    for rule in rules:
        key = (rule["literal"].lower(), rule["category"], bool(rule.get("sentence_start")))
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
        )
        for (literal, category, start), rule in merged.items()
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
    return Lexicon(
        phrases=tuple(phrases.values()),
        patterns=patterns,
        triggers=_triggers(rules["rules"]),
        concepts={form: (t, c) for form, (t, c, _) in phrases.items()},
    )
