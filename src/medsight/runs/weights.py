"""Model weights on disk, as safetensors only: written atomically, read after a layout check.

Every modality's runs write and read their weights here. A file is recognised by its layout
(an 8-byte little-endian header length, then a JSON header starting with ``{``) before
anything reads it, so a ``torch.save`` pickle renamed ``.safetensors`` is refused without
being unpickled.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from medsight.console import say
from medsight.errors import InputError
from medsight.runs.atomic import atomic_path

# safetensors refuses headers above 100 MB; a "length" beyond that is not a safetensors file
_MAX_HEADER_BYTES = 100_000_000


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


def save_weights(model: nn.Module, path: Path) -> Path:
    """Write ``model``'s state as safetensors (atomically); return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(unshared(model.state_dict()), str(tmp))
    return path


def _check_safetensors_layout(path: Path) -> None:
    """Raise InputError unless ``path`` starts like a safetensors file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if len(head) < 9:
        raise InputError(f"{path}: not a safetensors file (too short)")
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > min(size - 8, _MAX_HEADER_BYTES) or head[8:9] != b"{":
        raise InputError(
            f"{path}: not a safetensors file (pickled PyTorch checkpoints are refused: "
            "convert them with safetensors' `save_file` where you trust their origin)"
        )


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of the safetensors file at ``path``, on the CPU.

    Raises:
        InputError: the file is missing or is not a safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such weights file")
    _check_safetensors_layout(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a safetensors file ({exc})") from None


def transfer_weights(model: nn.Module, path: Path) -> tuple[list[str], list[str]]:
    """Load the tensors of ``path`` whose names and shapes match ``model`` (``--init``).

    Returns:
        ``(loaded, skipped)`` tensor names; skipped ones keep their fresh initialisation
        (a new head, an embedding of another vocabulary).

    Raises:
        InputError: the file is unreadable, or not one tensor matches.
    """
    weights = read_weights(path)
    own = model.state_dict()
    loaded = [k for k, v in weights.items() if k in own and own[k].shape == v.shape]
    skipped = sorted(set(own) - set(loaded))
    if not loaded:
        raise InputError(f"--init {path}: no tensor matches the model (another network?)")
    model.load_state_dict({k: weights[k] for k in loaded}, strict=False)
    return loaded, skipped


def transfer_preparation(path: Path | None) -> Callable[[nn.Module], None] | None:
    """A ``prepare_model`` hook that loads ``--init`` weights, or None without them.

    Raises:
        InputError: the weights file is missing or not safetensors (checked now, before
            any training).
    """
    if path is None:
        return None
    read_weights(path)

    def prepare(model: nn.Module) -> None:
        loaded, skipped = transfer_weights(model, path)
        note = f"; kept fresh (new or reshaped): {', '.join(skipped)}" if skipped else ""
        say(f"--init {path}: loaded {len(loaded)} tensors{note}")

    return prepare
