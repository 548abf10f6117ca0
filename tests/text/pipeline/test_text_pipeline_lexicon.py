"""The packaged lexicon: plurals, the word-pattern grammar, and regex == spaCy Matcher."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from medsight.text.pipeline.analyze import TextPipeline
from medsight.text.pipeline.lexicon import compile_word_pattern, load_lexicon, plural


def test_every_radlabels_finding_has_a_target() -> None:
    labels = Path(__file__).resolve().parents[3].parent / "shared/data/text/radlabels/labels.json"
    if not labels.is_file():
        pytest.skip("radlabels labels.json not present")
    findings = {f for report in json.loads(labels.read_text()).values() for f in report}
    concepts = {c for t, c, _ in load_lexicon().phrases if t in ("finding", "device")}
    assert len(findings) == 48 and findings <= concepts


def test_plurals_and_the_pattern_grammar() -> None:
    assert [plural(w) for w in ("opacity", "nodule", "ray", "mass", "et")] == [
        "opacities",
        "nodules",
        "rays",
        None,
        None,
    ]
    pattern = compile_word_pattern("heart|cardiac size? is mildly|moderately* enlarged")
    assert pattern.regex.search("The HEART size is mildly moderately enlarged.")
    assert pattern.regex.search("cardiac is enlarged")
    assert not pattern.regex.search("heartsize is enlarged")
    assert not pattern.regex.search("heart is enlargedness")
    assert pattern.anchors == ("enlarged",)
    hyphen = compile_word_pattern("right|left -? sided? rib fracture")
    assert hyphen.regex.search("old right-sided rib fracture")
    with pytest.raises(ValueError):
        compile_word_pattern("old? rib")
    assert json.loads(
        resources.files("medsight.text.pipeline").joinpath("lexicon.json").read_text()
    )


def test_the_regex_patterns_match_what_spacys_matcher_matches(
    pipeline: TextPipeline, radlabels_reports: Path
) -> None:
    """The benchmark hands medSpaCy the spaCy form of the patterns: both forms agree, except
    that the expression also matches across a line break (a whitespace token to spaCy)."""
    from spacy.matcher import Matcher

    lexicon = load_lexicon()
    matcher = Matcher(pipeline.nlp.vocab)
    for n, (_, _, tokens) in enumerate(lexicon.patterns):
        matcher.add(str(n), [tokens])
    for path in sorted(radlabels_reports.glob("*.txt"))[:300]:
        doc = pipeline.nlp.make_doc(path.read_text(encoding="utf-8"))
        ours = {(s, e) for s, e, _ in pipeline.matcher._pattern_matches(doc)}
        spacy_spans = {(s, e) for _, s, e in matcher(doc)}
        # spaCy lists every sub-match; the greedy expression finds the longest of each
        for start, end in ours - spacy_spans:
            assert any(t.is_space for t in doc[start:end]), path.name
        for start, end in spacy_spans:
            assert any(s <= start and end <= e for s, e in ours), path.name
