"""The event embedding every EHR sequence model shares, and the static (age, sex) embedding.

A batch is a dict of tensors (padded to the batch's longest history, oldest event first):
``code`` (N, L) int64 vocabulary index (0 padding, 1 unknown), ``value_bin`` (N, L) int64
(0 no value), ``value`` (N, L) float32 per-code standardised value (0 when none),
``hours_before`` (N, L) float32 hours from the event to the prediction time (>= 0),
``delta_hours`` (N, L) float32 hours since the previous event, ``mask`` (N, L) bool (True =
a real event), ``age_years`` (N,) float32 (NaN unknown), ``sex`` (N,) int64 (0 unknown,
1 female, 2 male).

One event's embedding = code embedding + value-bin embedding + a projection of the
standardised value (only where there is one) + a projection of time features (log hours
before the prediction and log hours since the previous event, with sinusoids of the first,
so irregular sampling is seen as time, not as position). Padded positions embed to zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from medsight.ehr.models.spec import ModelSpec

Batch = dict[str, torch.Tensor]

#: sinusoid frequencies over log1p(hours before): periods from ~hours to ~decades
TIME_FREQUENCIES = (0.5, 1.0, 2.0, 4.0)
#: age is centred and scaled so that adult ages are O(1)
AGE_CENTRE, AGE_SCALE = 50.0, 20.0


def time_features(hours_before: torch.Tensor, delta_hours: torch.Tensor) -> torch.Tensor:
    """``(N, L, 2 + 2 * len(TIME_FREQUENCIES))`` features of an event's times."""
    h = torch.log1p(hours_before.clamp_min(0)) / math.log1p(24 * 365.25 * 10)
    d = torch.log1p(delta_hours.clamp_min(0)) / math.log1p(24 * 365.25 * 10)
    waves = [f(h * w * math.pi * 8) for w in TIME_FREQUENCIES for f in (torch.sin, torch.cos)]
    return torch.stack([h, d, *waves], dim=-1)


class EventEmbedding(nn.Module):
    """Batch -> ``(N, L, D)`` event embeddings (see the module docstring)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        d = spec.embed_dim
        self.code = nn.Embedding(spec.vocab_size, d, padding_idx=0)
        self.value_bin = nn.Embedding(spec.value_bins + 2, d, padding_idx=0)
        self.value = nn.Linear(1, d, bias=False)
        self.time = nn.Linear(2 + 2 * len(TIME_FREQUENCIES), d)
        self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(spec.dropout)

    def forward(self, batch: Batch) -> torch.Tensor:
        has_value = (batch["value_bin"] > 0).unsqueeze(-1).to(batch["value"].dtype)
        x = (
            self.code(batch["code"])
            + self.value_bin(batch["value_bin"])
            + self.value(batch["value"].unsqueeze(-1)) * has_value
            + self.time(time_features(batch["hours_before"], batch["delta_hours"]))
        )
        x = self.dropout(self.norm(x))
        return x * batch["mask"].unsqueeze(-1).to(x.dtype)


class StaticEmbedding(nn.Module):
    """Age and sex -> ``(N, D)``: what every model adds to its summary of the events."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.sex = nn.Embedding(3, spec.embed_dim)
        # age (scaled) and whether it is known
        self.age = nn.Linear(2, spec.embed_dim)

    def forward(self, batch: Batch) -> torch.Tensor:
        age = batch["age_years"]
        known = torch.isfinite(age)
        scaled = torch.where(known, (age - AGE_CENTRE) / AGE_SCALE, torch.zeros_like(age))
        features = torch.stack([scaled, known.to(age.dtype)], dim=-1)
        return self.sex(batch["sex"]) + self.age(features)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real positions of ``x`` (N, L, D); zeros for a sample with no events."""
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of each sample's last real event (N,); -1 when it has none."""
    return mask.long().sum(1) - 1
