"""Resumable training state: written after every epoch, read by ``--resume``.

``checkpoints/last.safetensors`` holds the model, the optimizer's tensors and the random
number generator states; ``checkpoints/last.json`` the scalars (epoch, history, early
stopping); ``checkpoints/best.safetensors`` the best epoch's weights. Both files
are replaced atomically, so a kill at any moment leaves the previous epoch's state whole.
Everything is safetensors/JSON: nothing is unpickled on resume.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from medsight.errors import InputError
from medsight.runs.atomic import atomic_path, write_text_atomic
from medsight.runs.weights import unshared


@dataclass
class LoopState:
    """The loop's scalars (saved as JSON)."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_key: tuple[float, float] = (-1.0, -float("inf"))
    best_epoch: int = 0
    stale: int = 0
    param_groups: list[dict[str, Any]] = field(default_factory=list)
    config_json: str = ""


def saved_history(folder: Path) -> list[dict[str, float]]:
    """The per-epoch rows of the saved state in ``folder`` ([] when there is none)."""
    path = folder / "last.json"
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")).get("history", []))


def _tensors(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    out = {f"model.{k}": v for k, v in unshared(model.state_dict()).items()}
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for name, value in state.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            out[f"optim.{index}.{name}"] = tensor.detach().cpu().contiguous()
    out["rng.torch"] = torch.get_rng_state()
    out["rng.batches"] = generator.get_state()
    groups = [{k: v for k, v in g.items()} for g in opt["param_groups"]]
    return out, groups


def save_state(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    loop: LoopState,
    best: dict[str, torch.Tensor] | None,
) -> None:
    """Write the state of a finished epoch (each file atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors, loop.param_groups = _tensors(model, optimizer, generator)
    with atomic_path(folder / "last.safetensors") as tmp:
        save_file(tensors, str(tmp))
    if best is not None:
        with atomic_path(folder / "best.safetensors") as tmp:
            save_file(unshared(best), str(tmp))
    write_text_atomic(folder / "last.json", json.dumps(loop.__dict__, indent=1))


def load_state(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
    """Restore model, optimizer and RNG states; return the loop scalars and best weights.

    Raises:
        InputError: there is no saved state, or it is unreadable or from another model.
    """
    last, meta = folder / "last.safetensors", folder / "last.json"
    if not (last.is_file() and meta.is_file()):
        raise InputError(f"{folder}: nothing to resume (no last.safetensors/last.json)")
    try:
        tensors = load_file(str(last))
        raw = json.loads(meta.read_text(encoding="utf-8"))
        best = (
            load_file(str(folder / "best.safetensors"))
            if (folder / "best.safetensors").is_file()
            else None
        )
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{folder}: saved training state is unreadable ({exc})") from None
    loop = LoopState(**{**raw, "best_key": tuple(raw["best_key"])})
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError:
        raise InputError(f"{folder}: saved state belongs to a different model") from None
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            opt_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": loop.param_groups})
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.batches"])
    return loop, best


def start_or_resume(
    state_dir: Path | None,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    config_json: str,
    resume: bool,
) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
    """A fresh loop state, or (with ``resume``) the saved one and its best weights.

    The saved state carries its settings: resuming under others would not give the
    uninterrupted run's weights, so it is checked here, where every loop (single runs, CV
    folds, presets, segmentation) loads its state.

    Raises:
        InputError: nothing to resume, or it was saved under other settings.
    """
    if not resume:
        return LoopState(config_json=config_json), None
    if state_dir is None:
        raise ValueError("resume needs a state_dir")
    loop, best = load_state(state_dir, model, optimizer, generator)
    # compared as JSON values, not text: the key order changed when the task configs began
    # to share `LoopConfig`, and states saved before that must still resume
    if loop.config_json and json.loads(loop.config_json) != json.loads(config_json):
        raise InputError(f"{state_dir}: --resume needs the same settings as the interrupted run")
    return loop, best
