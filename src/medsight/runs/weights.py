"""Model weights made ready for safetensors: on the CPU, every tensor owning its memory."""

from __future__ import annotations

import torch


def unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` on the CPU with every tensor owning its memory.

    Some networks list one module under two names (MONAI's DynUNet keeps its encoder in
    ``skip_layers`` too); safetensors refuses tensors that share memory, so the second name
    gets a copy (loading assigns the same values to both).

    Args:
        state: A ``state_dict`` (names to tensors, on any device).

    Returns:
        The same names, each mapped to a contiguous CPU tensor that shares no storage with
        another entry.
    """
    seen: set[int] = set()
    out = {}
    for key, value in state.items():
        tensor = value.detach().to("cpu").contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen:
            tensor = tensor.clone()
        seen.add(pointer)
        out[key] = tensor
    return out
