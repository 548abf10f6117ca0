"""Which tokens of a note moved a document classifier's label: one signed score per token.

Two methods, both for the log-probability of one class of one output (the classifier's
heads are side by side, `split_logits`):

- ``integrated-gradients`` (default): integrated gradients (Sundararajan et al. 2017) over
  the token embeddings, from an all-zero embedding baseline (padding's embedding) along a
  straight path in ``steps`` Riemann steps (midpoints); a token's score is the dot product
  of its embedding's displacement and the mean gradient, so the scores add up to the
  log-probability's change from the baseline (completeness), reported as ``delta``.
- ``occlusion``: each token replaced in turn by ``[UNK]``; its score is how much the
  log-probability falls without it. Slower (one forward pass per token, batched) but needs
  no gradients.

Written here rather than with Captum: the network already exposes ``embed`` and
``forward_embedded``, and the whole method is a dozen lines of tensor code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from medsight.errors import InputError
from medsight.text.models.document_classifier import DocumentClassifier, split_logits
from medsight.text.models.subword_tokenizer import PAD_ID

METHODS = ("integrated-gradients", "occlusion")
IG_STEPS = 32
OCCLUSION_BATCH = 64
UNK_ID = 1


@dataclass(frozen=True)
class Attribution:
    """Token scores for one output's class (positive: the token supports the class)."""

    output_index: int
    class_index: int
    scores: np.ndarray
    #: the class's log-probability on the note, and on the baseline (IG) / None (occlusion)
    log_probability: float
    delta: float | None


def _log_prob(
    model: DocumentClassifier, logits: torch.Tensor, output: int, cls: int
) -> torch.Tensor:
    part = split_logits(logits, list(model.spec.output_sizes))[output]
    return part.log_softmax(dim=1)[:, cls]


def integrated_gradients(
    model: DocumentClassifier, ids: torch.Tensor, output: int, cls: int, steps: int = IG_STEPS
) -> Attribution:
    """Integrated-gradient scores of the tokens of ``ids`` ``(1, L)`` (module docstring)."""
    model.eval()
    mask = ids != PAD_ID
    with torch.no_grad():
        embedded = model.embed(ids)
    alphas = (torch.arange(steps, dtype=embedded.dtype) + 0.5) / steps
    path = (alphas[:, None, None] * embedded).requires_grad_(True)  # (steps, L, D)
    value = _log_prob(model, model.forward_embedded(path, mask.expand(steps, -1)), output, cls)
    (gradients,) = torch.autograd.grad(value.sum(), path)
    scores = (embedded[0] * gradients.mean(dim=0)).sum(dim=-1)
    with torch.no_grad():
        full = float(_log_prob(model, model.forward_embedded(embedded, mask), output, cls)[0])
        base = float(
            _log_prob(model, model.forward_embedded(torch.zeros_like(embedded), mask), output, cls)[
                0
            ]
        )
    return Attribution(output, cls, scores.detach().double().numpy(), full, full - base)


def occlusion(model: DocumentClassifier, ids: torch.Tensor, output: int, cls: int) -> Attribution:
    """Occlusion scores of the tokens of ``ids`` ``(1, L)`` (module docstring)."""
    model.eval()
    length = ids.shape[1]
    with torch.inference_mode():
        full = float(_log_prob(model, model(ids), output, cls)[0])
        scores = np.zeros(length)
        for start in range(0, length, OCCLUSION_BATCH):
            rows = torch.arange(start, min(length, start + OCCLUSION_BATCH))
            batch = ids.repeat(len(rows), 1)
            batch[torch.arange(len(rows)), rows] = UNK_ID
            scores[rows.numpy()] = full - _log_prob(model, model(batch), output, cls).numpy()
    return Attribution(output, cls, scores, full, None)


def attribute(
    model: DocumentClassifier, ids: torch.Tensor, output: int, cls: int, method: str
) -> Attribution:
    """Token scores by ``method`` (one of `METHODS`).

    Raises:
        InputError: an unknown method.
    """
    if method == "integrated-gradients":
        return integrated_gradients(model, ids, output, cls)
    if method == "occlusion":
        return occlusion(model, ids, output, cls)
    raise InputError(f"--method {method}: text models explain with {' or '.join(METHODS)}")
