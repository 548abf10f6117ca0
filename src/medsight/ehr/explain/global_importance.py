"""The codes that matter most to a risk model, over many patients' integrated gradients.

For every sample the events' attributions (`integrated_gradients.event_attributions`) are
summed per code; a code's importance is the mean over *all* samples of that per-sample
|sum| (0 for samples without the code), the way mean |SHAP| ranks features: a code that
moves the risk a lot for many patients ranks above one that moves it for a few. Also
reported per code: how many samples have it, its mean signed attribution per sample that has
it (the direction: positive raised the risk), and its mean |attribution| per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from medsight.ehr.explain.code_catalogue import PADDING, CodeCatalogue
from medsight.ehr.explain.code_groups import code_group
from medsight.ehr.explain.integrated_gradients import EmbeddedModel, event_attributions


def code_importance(
    model: EmbeddedModel,
    batches: Iterable[Mapping[str, Tensor]],
    codes: Sequence[str],
    catalogue: CodeCatalogue | None = None,
    steps: int = 16,
    top_k: int = 20,
) -> dict[str, Any]:
    """Rank codes by mean |per-sample attribution| over the samples of ``batches``.

    Args:
        model: a sequence model with ``embed``/``forward_embedded``, in eval mode.
        batches: model input dicts (e.g. the held-out samples, batched); ``code`` holds
            vocabulary indices into ``codes``.
        codes: the code of each vocabulary index (`code_catalogue.codes_by_index`).
        catalogue: descriptions of the codes (default: none, codes describe themselves).
        steps: integrated-gradients steps per sample.
        top_k: how many codes are listed.

    Returns:
        ``{"method", "n_samples", "steps", "codes": [{"code", "description", "group",
        "importance", "n_samples_with", "mean_signed_per_sample", "mean_abs_per_event",
        "n_events"}]}``, most important first, JSON-serialisable.
    """
    catalogue = catalogue or CodeCatalogue()
    n_codes = len(codes)
    per_sample_abs = torch.zeros(n_codes, dtype=torch.float64)
    per_sample_signed = torch.zeros(n_codes, dtype=torch.float64)
    samples_with = torch.zeros(n_codes, dtype=torch.float64)
    event_abs = torch.zeros(n_codes, dtype=torch.float64)
    event_count = torch.zeros(n_codes, dtype=torch.float64)
    n_samples = 0
    for batch in batches:
        attributions = event_attributions(model, batch, steps=steps).double().cpu()
        code = batch["code"].cpu().long().clamp(0, n_codes - 1)
        mask = batch["mask"].cpu().bool()
        n = code.shape[0]
        # per-sample sums of each code's attributions: (n, n_codes)
        sums = torch.zeros(n, n_codes, dtype=torch.float64)
        sums.scatter_add_(1, code, attributions * mask)
        present = torch.zeros(n, n_codes, dtype=torch.float64)
        present.scatter_add_(1, code, mask.double())
        per_sample_abs += sums.abs().sum(0)
        per_sample_signed += sums.sum(0)
        samples_with += (present > 0).double().sum(0)
        event_abs.scatter_add_(0, code[mask], attributions[mask].abs())
        event_count.scatter_add_(0, code[mask], torch.ones(int(mask.sum()), dtype=torch.float64))
        n_samples += n
    importance = per_sample_abs / max(n_samples, 1)
    ranked = [
        int(i) for i in torch.argsort(importance, descending=True) if codes[int(i)] != PADDING
    ]
    rows = []
    for i in ranked[:top_k]:
        if samples_with[i] == 0:
            break
        rows.append(
            {
                "code": codes[i],
                "description": catalogue.description(codes[i]),
                "group": code_group(codes[i]),
                "importance": float(importance[i]),
                "n_samples_with": int(samples_with[i]),
                "mean_signed_per_sample": float(per_sample_signed[i] / samples_with[i]),
                "mean_abs_per_event": float(event_abs[i] / event_count[i]),
                "n_events": int(event_count[i]),
            }
        )
    return {
        "method": "integrated gradients over event embeddings (zero baseline), "
        "mean |per-sample sum| per code over all samples",
        "n_samples": n_samples,
        "steps": int(steps),
        "codes": rows,
    }
