"""A tagger's network names and layer sizes (the plan's), without importing torch."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NETWORKS = ("bilstm-crf", "transformer-crf")


class TaggerSizes(BaseModel):
    """Layer sizes of a tagger (the plan's; saved in ``plan.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    word_dim: Annotated[int, Field(ge=1)] = 64
    shape_dim: Annotated[int, Field(ge=1)] = 16
    char_dim: Annotated[int, Field(ge=1)] = 24
    char_filters: Annotated[int, Field(ge=1)] = 48
    #: characters per token the CNN reads (longer tokens are cut)
    char_width: Annotated[int, Field(ge=3)] = 16
    hidden_dim: Annotated[int, Field(ge=2)] = 128
    layers: Annotated[int, Field(ge=1)] = 1
    heads: Annotated[int, Field(ge=1)] = 4
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.3
    #: tokens per chunk: a longer note is tagged in consecutive chunks
    max_tokens: Annotated[int, Field(ge=8)] = 512
