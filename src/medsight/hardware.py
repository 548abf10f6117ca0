"""What this CPU is and what it does natively: its name, its ISA flags, native bf16, and the
numeric precision a run uses (``--precision auto|fp32|bf16``).

Read from ``/proc/cpuinfo`` (Linux) without importing torch, so the CLI can resolve
``--precision`` and name the CPU before any heavy import. PyTorch's own probes
(``torch.backends.cpu.get_cpu_capability()``) say which kernels ATen dispatches to, not
whether the silicon computes bf16 natively: bf16 on a CPU without AVX512_BF16 or AMX is
emulated in fp32 and is slower, not faster, so ``auto`` only picks bf16 where one of those
flags is present.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Literal

from medsight.errors import InputError

Precision = Literal["fp32", "bf16"]
PrecisionChoice = Literal["auto", "fp32", "bf16"]
#: CPU flags (Linux ``/proc/cpuinfo`` names) that mean bf16 arithmetic in hardware
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's ``key: value`` lines of ``/proc/cpuinfo`` (empty off Linux)."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # one processor is enough: the cores of a machine are alike
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity (a container or taskset may allow fewer
    than the machine has), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover  (macOS, Windows)
        return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s "Model name"), or the platform's processor string."""
    return _cpuinfo_fields().get("model name") or platform.processor() or "unknown CPU"


def cpu_flags() -> frozenset[str]:
    """The CPU's ISA flags as Linux names them (``avx2``, ``avx512f``, ``amx_bf16``, ...)."""
    fields = _cpuinfo_fields()
    return frozenset((fields.get("flags") or fields.get("Features") or "").split())


def vector_isa() -> str:
    """The widest vector ISA in short: ``AVX-512``, ``AVX2``, ``NEON`` or ``baseline``."""
    flags = cpu_flags()
    if "avx512f" in flags:
        return "AVX-512"
    if "avx2" in flags:
        return "AVX2"
    if "asimd" in flags or platform.machine() in ("aarch64", "arm64"):
        return "NEON"
    return "baseline"


def _kernels_limited_below_bf16() -> bool:
    """Whether the environment caps PyTorch's kernels below the bf16 instructions
    (``ATEN_CPU_CAPABILITY=avx2|default``, ``ONEDNN_MAX_CPU_ISA`` without BF16/AMX)."""
    aten = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    onednn_capped = (
        bool(onednn) and onednn != "ALL" and "BF16" not in onednn and "AMX" not in onednn
    )
    return aten in ("avx2", "default", "zvector") or onednn_capped


def native_bf16() -> bool:
    """Whether bf16 runs in hardware here: the CPU has AVX512_BF16 or AMX-BF16 and the
    environment does not cap PyTorch's kernels below them."""
    has = any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)
    return has and not _kernels_limited_below_bf16()


def cpu_summary() -> str:
    """One line naming the CPU for benchmarks and plans, e.g. ``Intel(R) Xeon(R) Processor
    (AVX-512, native bf16: avx512_bf16 amx_bf16)``."""
    present = [flag for flag in NATIVE_BF16_FLAGS if flag in cpu_flags()]
    bf16 = f"native bf16: {' '.join(present)}" if present else "no native bf16"
    return f"{cpu_model()} ({vector_isa()}, {bf16})"


def resolve_precision(choice: str, auto_bf16: bool = True) -> Precision:
    """``auto`` -> bf16 where the CPU has native bf16 and ``auto_bf16`` (the path measured
    faster in bf16 at an accuracy that holds), else fp32; ``fp32``/``bf16`` as asked.

    Raises:
        InputError: an unknown choice, or ``bf16`` on a CPU without native bf16 (it would be
            emulated: slower than fp32 and no more accurate).
    """
    if choice == "auto":
        return "bf16" if auto_bf16 and native_bf16() else "fp32"
    if choice == "fp32":
        return "fp32"
    if choice == "bf16":
        if not native_bf16():
            raise InputError(
                "--precision bf16: this CPU has no native bf16 (no avx512_bf16 or amx_bf16 "
                "flag), so bf16 would be emulated and slower; use --precision fp32 or auto"
            )
        return "bf16"
    raise InputError(f"--precision must be auto, fp32 or bf16, got {choice!r}")
