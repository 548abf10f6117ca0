"""Transfer learning: start a model from another model's weights, then fine-tune it.

Weights come from a safetensors file only. The file is recognised by its layout (an 8-byte
little-endian header length, then a JSON header starting with ``{``) before anything reads
it, so a ``torch.save`` pickle renamed ``.safetensors`` is refused without being unpickled.

A model is split in two: the *head*, the module named by the model's ``head_layer``
attribute (``"head"`` when the model has no such attribute but a child called ``head``),
and the *backbone*, everything else. Tensors are matched by name and shape. A file key
matches the model key of the same name, or that name under the wrapper prefix every model
key shares (``net.`` for the MONAI-based models), after dropping a leading ``module.``
(DistributedDataParallel). So a medsight checkpoint, a plain MONAI state dict or a
MedicalNet state dict converted to safetensors all load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from medsight.errors import InputError
from medsight.imaging.models.checkpoint import ModelContract
from medsight.runs.weights import read_weights

# a BatchNorm's update counter: not a weight, never a reason to refuse a file
_COUNTERS = ("num_batches_tracked",)


@dataclass(frozen=True)
class TransferReport:
    """What `load_pretrained` did with each tensor (names are the model's).

    Attributes:
        loaded: Model tensors now holding the file's values.
        skipped: Model tensors left as initialised although the file has them, with the
            reason (head replaced, shape differs).
        missing: Model tensors the file does not have (left as initialised).
        unused: File tensors with no counterpart in the model.
    """

    loaded: tuple[str, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for logs, e.g. ``loaded 120 tensors; skipped 2 (net.fc.weight: ...)``."""
        parts = [f"loaded {len(self.loaded)} tensors"]
        if self.skipped:
            reasons = "; ".join(f"{k}: {v}" for k, v in list(self.skipped.items())[:4])
            more = ", ..." if len(self.skipped) > 4 else ""
            parts.append(f"skipped {len(self.skipped)} ({reasons}{more})")
        if self.missing:
            parts.append(f"{len(self.missing)} not in the file")
        if self.unused:
            parts.append(f"{len(self.unused)} file tensors unused")
        return "; ".join(parts)


def head_layer(model: nn.Module) -> str:
    """Name of ``model``'s head module, as in ``model.named_modules()``.

    Raises:
        TypeError: the model names no head (no ``head_layer`` and no ``head`` child), or
            names a module it does not have: a defect of the model class, not of the input.
    """
    name = getattr(model, "head_layer", None)
    modules = dict(model.named_modules())
    if name is None and "head" in modules:
        name = "head"
    if not isinstance(name, str) or not name or name not in modules:
        raise TypeError(
            f"{type(model).__name__} does not name its classifier head: give it a "
            "`head_layer` attribute naming the module that maps features to logits"
        )
    return name


def _in_head(key: str, head: str) -> bool:
    return key.startswith(head + ".")


def _shared_prefix(keys: Sequence[str]) -> str:
    # the first dotted component, when every key has the same one (a wrapper's ``net.``)
    firsts = {k.split(".", 1)[0] for k in keys if "." in k}
    if len(firsts) == 1 and all("." in k for k in keys):
        return firsts.pop() + "."
    return ""


def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def load_pretrained(
    model: nn.Module,
    weights: Path,
    replace_head: bool = True,
    strict_backbone: bool = True,
) -> TransferReport:
    """Copy the backbone (and optionally the head) of a safetensors file into ``model``.

    Args:
        model: A registered model (it must name its head, see `head_layer`).
        weights: A safetensors file, e.g. another run's ``model.safetensors``.
        replace_head: Keep ``model``'s freshly initialised head and skip the file's head
            tensors (reported, with "shape differs" when the class count changed). With
            False the head is loaded too and must have the same shape.
        strict_backbone: Refuse a file that lacks a backbone tensor of the model or has it
            with another shape (other input channels or dimensions, another architecture).
            With False those tensors keep their initial values and are reported.

    Returns:
        What was loaded, skipped, missing and unused.

    Raises:
        InputError: the file is not safetensors; it shares no tensor with the model; with
            ``strict_backbone`` a backbone tensor is missing or has another shape; without
            ``replace_head`` a head tensor has another shape (other class count).
    """
    weights = Path(weights)
    source = read_weights(weights)
    target = model.state_dict()
    head = head_layer(model)
    prefix = _shared_prefix(list(target))

    matched: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, tensor in source.items():
        name = key.removeprefix("module.")
        if name not in target and prefix + name in target:
            name = prefix + name
        if name in target:
            matched[name] = tensor
        else:
            unused.append(key)
    if not matched:
        raise InputError(
            f"{weights}: shares no tensor name with {type(model).__name__} "
            f"(file has e.g. {', '.join(list(source)[:3]) or 'nothing'})"
        )

    to_load: dict[str, torch.Tensor] = {}
    skipped: dict[str, str] = {}
    errors: list[str] = []
    for name, tensor in matched.items():
        expected = target[name]
        same_shape = tensor.shape == expected.shape
        differs = f"shape differs: file {_shape(tensor)}, model {_shape(expected)}"
        if _in_head(name, head):
            if replace_head:
                skipped[name] = "head replaced" + ("" if same_shape else f" ({differs})")
            elif not same_shape:
                errors.append(f"head {name}: {differs} (pass replace_head=True to retrain it)")
            else:
                to_load[name] = tensor
        elif same_shape:
            to_load[name] = tensor
        elif strict_backbone:
            errors.append(f"{name}: {differs}")
        else:
            skipped[name] = differs

    missing = [k for k in target if k not in matched and not (replace_head and _in_head(k, head))]
    if strict_backbone:
        errors += [
            f"{k}: not in the file"
            for k in missing
            if not _in_head(k, head) and not k.endswith(_COUNTERS)
        ]
    if errors:
        listed = "; ".join(errors[:5]) + (
            f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
        )
        raise InputError(f"{weights}: does not fit {type(model).__name__}: {listed}")

    # names and shapes were checked above, so nothing here can be missing or unexpected;
    # load_state_dict casts a file's float16/bfloat16 tensors to the model's dtype
    model.load_state_dict(to_load, strict=False)
    return TransferReport(
        loaded=tuple(to_load), skipped=skipped, missing=tuple(missing), unused=tuple(unused)
    )


def freeze_backbone(model: nn.Module) -> list[str]:
    """Stop gradients to every parameter outside the head; returns the frozen names.

    Batch-norm running statistics still update in ``train()`` mode: put the backbone's
    norm layers in ``eval()`` after each ``model.train()`` for a fully fixed extractor.
    """
    head = head_layer(model)
    frozen = []
    for name, param in model.named_parameters():
        if not _in_head(name, head):
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


def param_groups(model: nn.Module, backbone_lr: float, head_lr: float) -> list[dict[str, object]]:
    """Optimiser parameter groups: backbone at ``backbone_lr``, head at ``head_lr``.

    Every parameter is in exactly one group (frozen ones too: optimisers skip parameters
    without gradients). Each group also carries a ``"name"`` for logging.
    """
    head = head_layer(model)
    backbone: list[nn.Parameter] = []
    head_params: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        (head_params if _in_head(name, head) else backbone).append(param)
    return [
        {"name": "backbone", "params": backbone, "lr": backbone_lr},
        {"name": "head", "params": head_params, "lr": head_lr},
    ]


def check_compatible(
    contract: ModelContract,
    in_channels: int,
    spatial_dims: int,
    class_names: Sequence[str] | None,
    *,
    model_name: str | None = None,
) -> None:
    """Refuse, before training starts, a checkpoint whose contract does not fit the data.

    Args:
        contract: The checkpoint's ``model.json`` contract.
        in_channels: Channels of the data about to be used.
        spatial_dims: 2 or 3, of the data about to be used.
        class_names: The data's classes, in label order; None when the head will be
            replaced (`load_pretrained` with ``replace_head=True``), so classes may differ.
        model_name: The architecture about to be trained, when it must be the same.

    Raises:
        InputError: naming every mismatch (model, channels, dims, classes) at once.
    """
    problems = []
    if model_name is not None and model_name != contract.model_name:
        problems.append(f"model {contract.model_name!r} vs {model_name!r}")
    if contract.in_channels != in_channels:
        problems.append(f"in_channels {contract.in_channels} vs {in_channels}")
    if contract.spatial_dims != spatial_dims:
        problems.append(f"spatial_dims {contract.spatial_dims} vs {spatial_dims}")
    if class_names is not None and list(contract.class_names) != list(class_names):
        problems.append(
            f"classes {json.dumps(contract.class_names)} vs {json.dumps(list(class_names))}"
        )
    if problems:
        raise InputError(
            "the checkpoint's contract does not match the data (checkpoint vs data): "
            + "; ".join(problems)
        )
