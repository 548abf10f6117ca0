"""What every training loop sets up first: threads, Fabric (precision, seed), memory format.

Precision: ``config.bf16`` is the resolved choice (``medsight.hardware.resolve_precision``
picks bf16 only where the CPU computes it natively: AVX512_BF16 or AMX). bf16 runs as
Fabric's ``bf16-mixed``: autocast puts convolutions and matmuls in bf16; the loss is computed
on fp32 logits outside autocast (Fabric converts the model's output). CPU autocast leaves
norms and softmax in their input's dtype, i.e. bf16 after a bf16 convolution:

- batch norm: PyTorch's CPU kernel takes bf16 input with fp32 parameters and computes the
  statistics, the normalisation and the running averages in fp32; only its output is rounded
  to bf16 (checked bit for bit in ``tests/train/test_bf16_training.py``). Casting its input
  to fp32 first gave the same numbers and cost the speed-up (lungct-cnn at the demo's size,
  2 cores: bf16 1.22x fp32's samples/s, with fp32-cast norms 0.96x);
- group/layer/instance norm and softmax: `norms_in_fp32` casts their input to fp32, so they
  compute and return fp32 and the next convolution casts back to bf16.

No NaN losses appeared with this in 120 bf16 steps on the demo data (losses tracked fp32's
within noise), nor in 6 epochs of ``bench/train_classify.py`` (300 cases; validation AUC
tracked the fp32 run's).

Threads: all cores by default (``config.threads`` = 0). On a machine shared with other
processes, libgomp's default spin-waiting at every parallel region made two threads up to
40x slower than one on small element-wise ops (a 1.2M-element ``mul_``: 17 ms vs 0.4 ms,
measured on 2 busy cores); ``OMP_WAIT_POLICY=PASSIVE`` removes that (0.4 ms with two
threads) and doubled the demo's training samples/s there. libgomp reads it only when torch is
first imported, so it has to be set in the environment of the process (the CLI entry
point or the shell); `start_fabric` logs a line when it is not.

Processes: one, as above, unless the process was started by ``torchrun`` with a world of more
than one; then Fabric trains data-parallel with its DDP strategy (`medsight.train.distributed`).
"""

from __future__ import annotations

import logging
import os

import torch
from lightning.fabric import Fabric
from torch import nn

from medsight.train.config import LoopConfig
from medsight.train.distributed import Precision, start_ddp_fabric, torchrun_launch

log = logging.getLogger(__name__)

#: layers made to compute in fp32 under bf16 autocast (statistics, exp/log, division);
#: batch norm is not among them: its CPU kernel already computes in fp32 (module docstring)
FP32_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.Softmax,
    nn.LogSoftmax,
)


def _inputs_to_fp32(_module: nn.Module, args: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(
        a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args
    )


def norms_in_fp32(model: nn.Module) -> int:
    """Make ``model``'s group/layer/instance norms and softmax compute in fp32 under autocast.

    CPU autocast runs these layers in their input's dtype; a forward pre-hook casts the
    input to fp32, so they compute (and return) fp32, and the next convolution casts back to
    bf16. The hooks change no parameter or buffer, so ``state_dict`` is unchanged.

    Returns:
        The number of layers hooked.
    """
    layers = [m for m in model.modules() if isinstance(m, FP32_LAYERS)]
    for layer in layers:
        layer.register_forward_pre_hook(_inputs_to_fp32)
    return len(layers)


def start_fabric(config: LoopConfig) -> tuple[Fabric, torch.memory_format]:
    """A seeded CPU Fabric at the config's precision, and the channels-last format to use.

    bf16 runs as Fabric's ``bf16-mixed`` (autocast; see `norms_in_fp32`); otherwise fp32.
    Under a torchrun launch of more than one process, the Fabric is data-parallel (DDP over
    gloo, process group started); otherwise it is the single-process one, with no process
    group.

    Raises:
        InputError: torchrun's variables or ``MEDSIGHT_DDP_TIMEOUT_S`` are unusable.
        PeerLostError: the other ranks could not be reached.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    if torch.get_num_threads() > 1 and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        log.info(
            "OMP_WAIT_POLICY is not PASSIVE: on a machine shared with other processes, %d "
            "spin-waiting threads can train several times slower (set it before starting)",
            torch.get_num_threads(),
        )
    precision: Precision = "bf16-mixed" if config.bf16 else "32-true"
    launch = torchrun_launch()
    if launch is None:
        fabric = Fabric(accelerator="cpu", devices=1, precision=precision)
    else:
        fabric = start_ddp_fabric(launch, precision)
    fabric.seed_everything(config.seed, verbose=False)
    memory_format = torch.channels_last_3d if config.spatial_dims == 3 else torch.channels_last
    return fabric, memory_format
