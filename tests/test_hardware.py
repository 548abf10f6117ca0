"""CPU facts from /proc/cpuinfo, and `--precision` resolved from them."""

from __future__ import annotations

import pytest

from medsight import hardware
from medsight.errors import InputError

AVX2_ONLY = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx avx2 fma

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx avx2 fma
"""
SAPPHIRE = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: fpu avx avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile
"""


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    def use(text: str) -> None:
        path = tmp_path / "cpuinfo"
        path.write_text(text)
        monkeypatch.setattr(hardware, "CPUINFO", path)
        hardware._cpuinfo_fields.cache_clear()

    yield use
    hardware._cpuinfo_fields.cache_clear()


def test_avx2_cpu_gets_fp32_and_refuses_bf16(cpuinfo):
    cpuinfo(AVX2_ONLY)
    assert hardware.cpu_model() == "AMD EPYC 7B13"
    assert hardware.vector_isa() == "AVX2"
    assert not hardware.native_bf16()
    assert hardware.resolve_precision("auto") == "fp32"
    assert hardware.resolve_precision("fp32") == "fp32"
    with pytest.raises(InputError, match="no native bf16"):
        hardware.resolve_precision("bf16")
    assert "no native bf16" in hardware.cpu_summary()


def test_native_bf16_cpu_gets_bf16_on_auto(cpuinfo):
    cpuinfo(SAPPHIRE)
    assert hardware.vector_isa() == "AVX-512"
    assert hardware.native_bf16()
    assert hardware.resolve_precision("auto") == "bf16"
    # a path where bf16 measured no faster keeps fp32 on auto, bf16 still on request
    assert hardware.resolve_precision("auto", auto_bf16=False) == "fp32"
    assert hardware.resolve_precision("bf16", auto_bf16=False) == "bf16"
    assert hardware.resolve_precision("fp32") == "fp32"
    assert "avx512_bf16 amx_bf16" in hardware.cpu_summary()


def test_unknown_choice_and_missing_cpuinfo(cpuinfo, tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "CPUINFO", tmp_path / "absent")
    hardware._cpuinfo_fields.cache_clear()
    assert hardware.resolve_precision("auto") == "fp32"
    assert hardware.cpu_model()  # the platform's string, never empty
    with pytest.raises(InputError, match="auto, fp32 or bf16"):
        hardware.resolve_precision("fp16")


def test_kernels_capped_to_avx2_mean_no_native_bf16(cpuinfo, monkeypatch):
    cpuinfo(SAPPHIRE)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not hardware.native_bf16() and hardware.resolve_precision("auto") == "fp32"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert not hardware.native_bf16()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx512")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert hardware.native_bf16()
