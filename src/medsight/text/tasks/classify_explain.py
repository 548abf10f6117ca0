"""`medsight explain RUN note.txt -o OUT`: which words moved a text-classify run's labels.

The run's primary encoder scores the note (as `medsight predict` does); for each explained
output the predicted label (or ``--class OUTPUT=LABEL``'s) gets one signed score per subword
token (`medsight.text.explain.token_attributions`: integrated gradients over the token
embeddings, or ``--method occlusion``), drawn over the note's text in
``OUT/explanation.html``; ``OUT/explanation.json`` holds the labels and every token's
character span and score. ``--class OUTPUT`` explains that output only; by default every
output is explained, up to `MAX_DEFAULT_OUTPUTS`, skipping outputs predicted "not mentioned"
(the report labels' "nothing to see here").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medsight.console import say
from medsight.errors import InputError
from medsight.runs.atomic import write_text_atomic
from medsight.tasks.options import ExplainOptions
from medsight.text.explain.attribution_html import ExplainedOutput, attribution_page
from medsight.text.explain.token_attributions import attribute
from medsight.text.io.text_files import read_text_note
from medsight.text.tasks.classify_data import NOT_MENTIONED
from medsight.text.tasks.classify_predict import LoadedTextClassifier

MAX_DEFAULT_OUTPUTS = 8
#: what the CLI's default (an imaging method name) and its short spellings mean here
METHOD_NAMES = {
    "gradcam": "integrated-gradients",
    "ig": "integrated-gradients",
    "integrated-gradients": "integrated-gradients",
    "integrated_gradients": "integrated-gradients",
    "occlusion": "occlusion",
}


def _targets(
    loaded: LoadedTextClassifier, probs: dict[str, Any], wanted: str | None
) -> list[tuple[str, str]]:
    outputs = loaded.contract.outputs
    if wanted:
        output, _, label = wanted.partition("=")
        if output not in outputs:
            raise InputError(f"--class {output}: not an output of the run ({', '.join(outputs)})")
        if label and label not in outputs[output]:
            raise InputError(f"--class {wanted}: {output} has classes {', '.join(outputs[output])}")
        return [(output, label or outputs[output][int(probs[output].argmax())])]
    chosen = []
    for output, classes in outputs.items():
        label = classes[int(probs[output].argmax())]
        if label != NOT_MENTIONED:
            chosen.append((output, label))
    return chosen[:MAX_DEFAULT_OUTPUTS]


def explain_note(run_dir: Path, source: Path, options: ExplainOptions) -> list[Path]:
    """Write ``explanation.html`` and ``explanation.json`` for one note; return their paths.

    Raises:
        InputError: a missing run, an unreadable note, an unknown method, output or class.
    """
    loaded = LoadedTextClassifier(run_dir)
    method = METHOD_NAMES.get(options.method)
    if method is None:
        raise InputError(f"--method {options.method}: use integrated-gradients or occlusion")
    text = read_text_note(source).text
    probs = loaded.probabilities(text)
    encoding = loaded.tokenizer.encode(text)
    ids = loaded.token_ids(text)
    offsets = encoding.offsets[: ids.shape[1]]
    explained, records = [], []
    outputs = list(loaded.contract.outputs)
    for output, label in _targets(loaded, probs, options.class_name):
        cls = loaded.contract.outputs[output].index(label)
        found = attribute(loaded.model, ids, outputs.index(output), cls, method)
        tokens = [
            (int(s), int(e), float(v)) for (s, e), v in zip(offsets, found.scores, strict=False)
        ]
        probability = float(probs[output][cls])
        explained.append(ExplainedOutput(output, label, probability, method, tokens))
        records.append(
            {
                "output": output,
                "label": label,
                "probability": probability,
                "method": method,
                "log_probability": found.log_probability,
                "completeness_gap": None
                if found.delta is None
                else found.delta - float(found.scores.sum()),
                "tokens": [{"start": s, "end": e, "score": v} for s, e, v in tokens],
            }
        )
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    page = attribution_page(
        f"Why {loaded.contract.model_name} labelled {Path(source).name}", text, explained
    )
    html_path = write_text_atomic(out / "explanation.html", page)
    json_path = write_text_atomic(
        out / "explanation.json",
        json.dumps(
            {
                "model": loaded.contract.model_name,
                "truncated_at_tokens": loaded.contract.spec.max_tokens,
                "outputs": records,
            },
            indent=2,
        )
        + "\n",
    )
    if not records:
        say("every output was predicted 'not mentioned'; name one with --class OUTPUT")
    for path in (html_path, json_path):
        print(path)
    return [html_path, json_path]
