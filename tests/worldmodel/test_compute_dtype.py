"""world_model.dtype=auto: bf16 only where the device computes it natively, fp32 where it would be emulated."""

import pytest
import torch

from vjepa_planning.worldmodel.compute_dtype import CPUInfo, auto_dtype, cpu_info, resolve_dtype

AVX2_ONLY = CPUInfo("AMD EPYC (AVX2)", frozenset({"avx2", "fma"}))
AVX512_BF16 = CPUInfo("AMD EPYC (Zen 4)", frozenset({"avx2", "fma", "avx512f", "avx512_bf16"}))
SAPPHIRE_RAPIDS = CPUInfo("Intel Xeon", frozenset({"avx2", "avx512f", "amx_tile", "amx_bf16"}))


def test_cpu_info_reads_model_and_flags(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text(
        "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16\n\n"
        "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16\n"
    )
    info = cpu_info(str(f))
    assert info.model == "Test CPU 9000" and {"avx2", "avx512_bf16"} <= info.flags and "amx_bf16" not in info.flags
    assert "avx512_bf16:yes" in info.describe() and "amx_bf16:no" in info.describe()


def test_bf16_only_where_native(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    dtype, why = auto_dtype("cpu", AVX2_ONLY)
    assert dtype == torch.float32 and "emulated" in why
    assert auto_dtype("cpu", AVX512_BF16) == (torch.bfloat16, "CPU has avx512_bf16")
    assert auto_dtype("cpu", SAPPHIRE_RAPIDS)[0] == torch.bfloat16


def test_an_isa_cap_below_bf16_means_fp32(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    dtype, why = auto_dtype("cpu", AVX512_BF16)
    assert dtype == torch.float32 and "ONEDNN_MAX_CPU_ISA=AVX2" in why
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert auto_dtype("cpu", SAPPHIRE_RAPIDS)[0] == torch.bfloat16


def test_explicit_setting_wins_and_bad_names_are_refused():
    assert resolve_dtype("bfloat16", "cpu") == (torch.bfloat16, "set explicitly")
    assert resolve_dtype("float32", "cpu")[0] == torch.float32
    assert resolve_dtype("auto", "cpu")[1].startswith("auto: ")
    with pytest.raises(ValueError, match="world_model.dtype must be auto or one of"):
        resolve_dtype("bf16", "cpu")


def test_shipped_default_is_auto_and_loads_in_the_auto_dtype():
    from vjepa_planning.configs import compose_config
    from vjepa_planning.control.build import describe_compute, load_world_model

    cfg = compose_config("plan_goal", [])
    assert cfg.world_model.dtype == "auto"
    wm = load_world_model(cfg.world_model)
    assert wm.dtype == auto_dtype("cpu")[0]
    assert describe_compute(cfg.world_model).startswith(str(wm.dtype).removeprefix("torch.") + " on cpu (auto: ")
