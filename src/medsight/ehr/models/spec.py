"""`ModelSpec`: the sizes every EHR sequence model is built from (chosen by the plan).

Saved inside ``plan.json`` (its ``model`` field), so a run's weights can be rebuilt from
its folder alone.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Positive = Annotated[int, Field(ge=1)]


class ModelSpec(BaseModel):
    """Vocabulary size and network sizes of an EHR sequence model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: embedding rows: the plan's vocabulary + 2 (0 padding, 1 unknown or rare code)
    vocab_size: Annotated[int, Field(ge=2)]
    #: value bins per code (value_bin 1..n; 0 no value; n + 1 a value of a code without bins)
    value_bins: Positive = 10
    embed_dim: Positive = 64
    hidden_dim: Positive = 64
    #: recurrent layers (GRU, LSTM, RETAIN's two GRUs)
    layers: Positive = 1
    #: Transformer encoder layers and attention heads (embed_dim must divide by heads)
    transformer_layers: Positive = 2
    heads: Positive = 4
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
