"""Leave a model exactly as it was after an explanation method ran on it.

MONAI's explanation classes (1.6.1) change the model they are given and do not undo it:

* ``GradCAM`` / ``GradCAMpp`` register a forward and a full backward hook on the target
  layer and never remove them, so they would fire (and hold activations) on every later
  forward pass;
* a full backward hook makes any *in-place* op on the target's output fail with
  ``RuntimeError: Output 0 of BackwardHookFunction is a view and is being modified
  inplace`` (e.g. a ``Conv3d`` target followed by ``ReLU(inplace=True)``), during Grad-CAM
  and in all later training while the hook stays registered; MONAI sets ``inplace=False``
  on the target module only, and for good;
* they call ``model.zero_grad()``, discarding accumulated gradients;
* they (and ``OcclusionSensitivity``, through ``monai.networks.utils.eval_mode``) restore
  ``train()`` / ``eval()`` only at the top level, so a deliberately frozen submodule (say,
  a BatchNorm kept in eval mode while fine-tuning) comes back in training mode.

`preserved_model_state` records all of that before the method runs and puts it back
afterwards, even when the method raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def preserved_model_state(model: nn.Module, hooked: nn.Module | None = None) -> Iterator[None]:
    """Undo, when the block exits, every change an explanation method makes to ``model``.

    Inside the block every module with an ``inplace`` flag runs out-of-place when
    ``hooked`` is given (in-place ops on a hooked output break the backward hook).

    Args:
        model: The model the method runs on.
        hooked: The module the method hooks (Grad-CAM's target layer); hooks added to it
            inside the block are removed. None when the method registers no hooks.

    Yields:
        Nothing; the block runs with the model prepared as described.
    """
    training = {module: module.training for module in model.modules()}
    grads = {param: param.grad for param in model.parameters()}
    forward_hooks = set(hooked._forward_hooks) if hooked is not None else set()
    backward_hooks = set(hooked._backward_hooks) if hooked is not None else set()
    full_backward_flag = hooked._is_full_backward_hook if hooked is not None else None
    # ``inplace`` is a plain attribute of ReLU, Dropout, ... (set it as MONAI does).
    inplace_modules = (
        [m for m in model.modules() if m.__dict__.get("inplace") is True]
        if hooked is not None
        else []
    )
    for module in inplace_modules:
        module.__dict__["inplace"] = False
    try:
        yield
    finally:
        if hooked is not None:
            for key in set(hooked._forward_hooks) - forward_hooks:
                del hooked._forward_hooks[key]
                hooked._forward_hooks_with_kwargs.pop(key, None)
                hooked._forward_hooks_always_called.pop(key, None)
            for key in set(hooked._backward_hooks) - backward_hooks:
                del hooked._backward_hooks[key]
            hooked._is_full_backward_hook = full_backward_flag
        for module in inplace_modules:
            module.__dict__["inplace"] = True
        for module, was_training in training.items():
            module.training = was_training
        for param, grad in grads.items():
            param.grad = grad
