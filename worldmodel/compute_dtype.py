"""Which compute dtype is fast on this device: ``world_model.dtype: auto`` (the default) resolves here.

bfloat16 halves the memory traffic and, on hardware that computes it natively, roughly doubles to
quadruples matmul throughput. Where it is emulated (x86 CPUs without AVX512_BF16 or AMX: most AVX2
desktops and many cloud VMs) every bf16 matmul is converted in software and runs several times
*slower* than float32. So:

- a CUDA GPU with bf16 support: bfloat16;
- a CPU whose flags include ``avx512_bf16`` or ``amx_bf16``: bfloat16, unless oneDNN is capped below
  those instructions (``ONEDNN_MAX_CPU_ISA``, as benchmarks/planning_speed.py ``--cap-isa`` does);
- anything else: float32.

An explicit ``float32`` / ``bfloat16`` / ``float16`` is used as given. ``cpu_info()`` is what
benchmarks print next to every speed figure.

``world_model.compile: auto`` resolves here too (``resolve_compile``): the rollout step is compiled with
inductor where inductor can build code, a C++ compiler on the CPU, triton on CUDA.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import shutil
from dataclasses import dataclass

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instructions oneDNN uses for bf16 matmuls
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
# ONEDNN_MAX_CPU_ISA values (oneDNN's names) that still include native bf16 matmuls.
_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX512_CORE_FP16", "AVX10_1_512", "AVX10_2_512", "ALL")


@dataclass(frozen=True)
class CPUInfo:
    model: str
    flags: frozenset[str]

    @property
    def isa_cap(self) -> str | None:
        """oneDNN's instruction-set cap from the environment, if any."""
        return os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")

    @property
    def native_bf16(self) -> bool:
        if not any(f in self.flags for f in NATIVE_BF16_FLAGS):
            return False
        cap = self.isa_cap
        return cap is None or cap.upper().startswith(_BF16_ISAS)

    def describe(self) -> str:
        """One line for logs and benchmark printouts: model, the flags that decide speed, and any cap."""
        flags = " ".join(f"{f}:{'yes' if f in self.flags else 'no'}" for f in REPORTED_FLAGS)
        cap = f" (oneDNN capped at {self.isa_cap})" if self.isa_cap else ""
        return f"{self.model} [{flags}]{cap}"


@functools.lru_cache(maxsize=4)
def cpu_info(path: str = "/proc/cpuinfo") -> CPUInfo:
    """Model name and ISA flags of this CPU, from /proc/cpuinfo (Linux); elsewhere the platform's
    processor name and whatever torch's cpuinfo reports for the two bf16 instruction sets."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    if not text:
        probe = getattr(torch._C, "_cpu", None)
        if probe is not None and getattr(probe, "_is_avx512_bf16_supported", lambda: False)():
            flags.add("avx512_bf16")
        if probe is not None and getattr(probe, "_is_amx_tile_supported", lambda: False)():
            flags.update(("amx_tile", "amx_bf16"))
    return CPUInfo(model or platform.processor() or platform.machine() or "unknown CPU", frozenset(flags))


def auto_dtype(device: str | torch.device, cpu: CPUInfo | None = None) -> tuple[torch.dtype, str]:
    """The fast compute dtype for ``device`` (on ``cpu``, this machine's by default) and why it was
    chosen (one phrase, for printing)."""
    device = torch.device(device)
    if device.type == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16, "GPU with native bf16"
        return torch.float32, "GPU without bf16 support"
    if device.type != "cpu":
        return torch.float32, f"{device.type} device"
    cpu = cpu or cpu_info()
    if cpu.native_bf16:
        have = [f for f in NATIVE_BF16_FLAGS if f in cpu.flags]
        return torch.bfloat16, f"CPU has {'+'.join(have)}"
    if any(f in cpu.flags for f in NATIVE_BF16_FLAGS):
        return torch.float32, f"bf16 instructions disabled by ONEDNN_MAX_CPU_ISA={cpu.isa_cap}: bf16 would be emulated"
    return torch.float32, "CPU has no avx512_bf16 / amx_bf16: bf16 would be emulated"


def resolve_dtype(name: str, device: str | torch.device) -> tuple[torch.dtype, str]:
    """``world_model.dtype`` -> (dtype, why): ``auto`` picks by device, anything else is used as given."""
    if name == "auto":
        dtype, why = auto_dtype(device)
        return dtype, f"auto: {why}"
    if name not in DTYPES:
        raise ValueError(f"world_model.dtype must be auto or one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name], "set explicitly"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def resolve_compile(setting: str | bool, device: str | torch.device) -> tuple[bool, str]:
    """``world_model.compile`` (auto | true | false) -> (compile the rollout step?, why)."""
    if isinstance(setting, bool) or setting in ("true", "false"):
        return setting in (True, "true"), "set explicitly"
    if setting != "auto":
        raise ValueError(f"world_model.compile must be auto, true or false, got {setting!r}")
    device = torch.device(device)
    if device.type == "cpu":
        cxx = os.environ.get("CXX") or next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
        return (True, f"auto: C++ compiler {cxx}") if cxx else (False, "auto: no C++ compiler for inductor")
    if device.type == "cuda":
        found = importlib.util.find_spec("triton") is not None
        return found, "auto: triton found" if found else "auto: no triton for inductor"
    return False, f"auto: {device.type} device"
