"""Planning time per action: KV-cached rollout vs the reference-style full recompute, and GFLOP/s.

    python benchmarks/planning_speed.py                   # shipped sim model, default planner settings
    python benchmarks/planning_speed.py --official-size   # ViT-g width, 256 patches, 24x1024 predictor (GPU)
    python benchmarks/planning_speed.py --official-size --synthetic-context -- world_model.device=cuda   # no MuJoCo there
    python benchmarks/planning_speed.py --world-models sim lewm   # the V-JEPA pair and LeWM side by side

Runs the default planner as plan-goal does (context of `context_frames` observed frames, horizon,
samples, iterations from its configs/planner/ preset unless overridden, e.g. `planner=cem`) on real sim
frames, first with the cached rollout and then with a rollout that re-runs the whole history at every
imagined step (as the public V-JEPA 2-AC code does), and prints the median seconds per action of each and their ratio. FLOPs of one
planning call are counted with torch's FlopCounterMode; achieved GFLOP/s is compared with a dense
matmul measured on the same device and dtype; a dtype the CPU only emulates is named as such.

Every printout starts with the CPU model and the ISA flags that decide speed (avx2, fma, avx512f,
avx512_bf16, amx). `--dtypes float32 bfloat16` measures both in one run, `--compile auto false` the
compiled and the eager rollout step side by side (world_model.compile; the compile itself is done by
the world model's warm-up first and timed apart); `--cap-isa avx2` re-runs the benchmark with oneDNN,
ATen, inductor's generated code and MKL capped at AVX2 (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY,
MKL_ENABLE_INSTRUCTIONS), which is how an AVX2-only CPU computes: bf16 then falls back to emulation,
as it does on such machines."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


class FullRecompute:
    """The same world model, rolled out the reference way."""

    def __init__(self, wm):
        self.wm = wm

    def encode(self, frames):
        return self.wm.encode(frames)

    def rollout(self, z, state, actions, **kw):
        return self.wm.rollout(z, state, actions, full_recompute=True, **kw)

    def rollout_differentiable(self, z, state, actions, **kw):  # gradient refinement (cem_grad): batch 1, as is
        return self.wm.rollout_differentiable(z, state, actions, **kw)


def dense_matmul_gflops(device: str, dtype: torch.dtype, n: int | None = None) -> float:
    n = n or (2048 if device == "cpu" else 8192)  # a GPU needs the larger product to reach its peak
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    reps = 10 if device == "cpu" else 100
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_plan(planner, z, s, past, z_goal, device: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    planner.plan(z, s, z_goal, past_actions=past)
    _sync(device)
    return time.perf_counter() - t0


def time_pairs(cached, reference, z, s, past, z_goal, repeats: int, device: str) -> tuple[list[float], list[float]]:
    """Alternate the two planners so both see the same machine load (shared CPUs drift a lot);
    the first call of each warms up allocators and kernels and is not counted."""
    time_plan(cached, z, s, past, z_goal, device)
    time_plan(reference, z, s, past, z_goal, device)
    t_cached, t_ref = [], []
    for _ in range(repeats):
        t_cached.append(time_plan(cached, z, s, past, z_goal, device))
        t_ref.append(time_plan(reference, z, s, past, z_goal, device))
    return t_cached, t_ref


ISA_CAPS = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}


def cap_isa(name: str) -> None:
    """Re-run this process with oneDNN / ATen limited to an older instruction set (once)."""
    env = ISA_CAPS[name]
    if all(os.environ.get(k) == v for k, v in env.items()):
        return
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **env})


def peak_note(device: str, dtype: torch.dtype, peaks: dict[torch.dtype, float]) -> str:
    """'vs dense matmul X GFLOP/s' with the emulation said out loud where bf16 is slower than fp32."""
    peak = peaks[dtype]
    if device == "cpu" and dtype != torch.float32 and peak < peaks[torch.float32]:
        return f"dense {dtype} matmul {peak:.1f} GFLOP/s: EMULATED on this CPU (float32 matmul: {peaks[torch.float32]:.1f} GFLOP/s)"
    return f"dense matmul {peak:.1f} GFLOP/s"


def print_profile(planner, z, s, past, z_goal, rows: int) -> None:
    """Where one plan's time goes: torch profiler operators (inductor's generated kernels each named, main
    turns that on) grouped by input shape, most self time first."""
    from torch.profiler import profile

    with profile(record_shapes=True) as prof:
        planner.plan(z, s, z_goal, past_actions=past)
    table = prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=60, max_shapes_column_width=80
    )
    print(table)


def build_random(kind: str, device: str, dtype: torch.dtype, compiled: bool = False):
    """--official-size / --random-init: the architecture with random weights, from the builders training uses."""
    from omegaconf import OmegaConf

    from vjepa_planning.configs import CONFIG_DIR
    from vjepa_planning.worldmodel.encoder import build_encoder
    from vjepa_planning.worldmodel.predictor import build_predictor as named_predictor
    from vjepa_planning.worldmodel.train import build_predictor
    from vjepa_planning.worldmodel.world_model import VJEPAWorldModel

    torch.manual_seed(0)
    if kind == "official":
        with torch.device(device):
            enc = build_encoder("vit_giant", img_size=256)
            pred = named_predictor("ac_official", embed_dim=enc.embed_dim, grid_size=16)
    else:  # the shipped architecture (configs/encoder/sim_mini.yaml, configs/predictor/sim_small.yaml)
        e = OmegaConf.load(CONFIG_DIR / "encoder" / "sim_mini.yaml")
        p = OmegaConf.load(CONFIG_DIR / "predictor" / "sim_small.yaml")
        enc = build_encoder(e.name, patch_size=e.patch_size, tubelet_size=e.tubelet_size, img_size=e.img_size)
        pred = build_predictor(OmegaConf.to_container(p), enc.embed_dim, e.img_size // e.patch_size, seed=0)
    return VJEPAWorldModel.from_modules(enc, pred, device=device, dtype=dtype, compile=compiled)


def synthetic_context(wm, frames: int, device: str, size: int = 256):
    """--synthetic-context: random frames, states and actions in the shape planning_context gives, for a
    machine without MuJoCo (a GPU box); with random weights the timings do not depend on what they show."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (frames + 1, size, size, 3), generator=g, dtype=torch.uint8).numpy()
    z = wm.encode(images[:frames])[None]  # [1, T0, N, D]
    s = 0.1 * torch.randn(1, frames, 7, generator=g).to(device)
    past = 0.02 * torch.randn(1, frames - 1, 7, generator=g).to(device) if frames > 1 else None
    return (z if frames > 1 else z[:, 0]), (s if frames > 1 else s[:, 0]), past, wm.encode(images[frames])


def measure(args, cfg, dtype_setting: str, compile_setting, peaks: dict) -> dict:
    """One dtype: cached vs reference planning time, FLOPs and GFLOP/s (printed and returned)."""
    from omegaconf import OmegaConf

    from vjepa_planning.control.build import load_world_model, planner_config, planning_context
    from vjepa_planning.planners import make_planner
    from vjepa_planning.worldmodel.compute_dtype import dtype_name, resolve_compile, resolve_dtype
    from vjepa_planning.worldmodel.protocol import RolloutWarmUp

    device = cfg.world_model.device
    dtype, why = resolve_dtype(dtype_setting, device)
    compiled, why_compiled = resolve_compile(compile_setting, device) if "compile" in cfg.world_model else (False, "no compiled form")
    if args.official_size or args.random_init:
        wm = build_random("official" if args.official_size else "sim", device, dtype, compiled)
    else:
        wm = load_world_model({**OmegaConf.to_container(cfg.world_model), "dtype": dtype_name(dtype), "compile": compiled})
    pcfg = planner_config(cfg.planner)
    frames = int(cfg.planner.context_frames)
    z, s, past, z_goal = (synthetic_context if args.synthetic_context else planning_context)(wm, frames, device)
    print(
        f"\n== {dtype_name(dtype)} ({why}) on {device}, {'compiled' if compiled else 'eager'} rollout ({why_compiled}), "
        f"threads {torch.get_num_threads()}: {cfg.planner.name}, context {frames} frames, "
        f"horizon {pcfg.horizon}, {pcfg.num_samples} samples x {pcfg.iterations} iterations, tokens/frame {z.shape[-2]}, dim {z.shape[-1]}"
    )
    if isinstance(wm, RolloutWarmUp) and compiled:
        print(f"warm-up (compiling the rollout step for this planner's shapes): {wm.warm_up(pcfg.batch_sizes(), pcfg.horizon, frames):.1f} s")
    cached = make_planner(cfg.planner.name, wm, pcfg)
    reference = make_planner(cfg.planner.name, FullRecompute(wm), pcfg)
    t_cached, t_ref = time_pairs(cached, reference, z, s, past, z_goal, args.repeats, device)
    with FlopCounterMode(display=False) as counter:
        counted = cached.plan(z, s, z_goal, past_actions=past)
    flops = counter.get_total_flops()
    if args.profile:
        print_profile(cached, z, s, past, z_goal, args.profile)
    med_c, med_r = statistics.median(t_cached), statistics.median(t_ref)
    if dtype not in peaks:
        peaks[dtype] = dense_matmul_gflops(device, dtype)
    achieved = flops / med_c / 1e9
    print(f"cached rollout:      {med_c:.3f} s per action (median of {len(t_cached)})")
    print(f"reference rollout:   {med_r:.3f} s per action (median of {len(t_ref)})")
    ratios = sorted(r / c for c, r in zip(t_cached, t_ref))
    print(f"speed-up:            {med_r / med_c:.2f}x (per pair: min {ratios[0]:.2f}x, median {statistics.median(ratios):.2f}x, max {ratios[-1]:.2f}x)")
    print(
        f"achieved:            {achieved:.1f} GFLOP/s ({flops / 1e9:.1f} GFLOP per action, {counted.candidates} candidates), "
        f"{100 * achieved / peaks[dtype]:.0f}% of the {peak_note(device, dtype, peaks)}"
    )
    return {"dtype": dtype_name(dtype), "rollout": "compiled" if compiled else "eager", "cached_s": med_c, "reference_s": med_r, "gflop": flops / 1e9, "gflops": achieved}


def main() -> None:
    from vjepa_planning.configs import compose_config
    from vjepa_planning.control.build import world_model_overrides
    from vjepa_planning.worldmodel.compute_dtype import cpu_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-size", action="store_true", help="random weights at V-JEPA 2-AC size (needs a GPU)")
    parser.add_argument("--random-init", action="store_true", help="the sim architecture with random weights")
    parser.add_argument("--synthetic-context", action="store_true",
                        help="random frames instead of a sim episode (no MuJoCo needed; for --official-size/--random-init)")
    parser.add_argument("--repeats", type=int, default=7, help="timed (cached, reference) pairs")
    parser.add_argument("--dtypes", nargs="+", default=None, choices=["auto", "float32", "bfloat16", "float16"],
                        help="compute dtypes to measure in turn (default: world_model.dtype)")
    parser.add_argument("--compile", nargs="+", default=None, choices=["auto", "true", "false"],
                        help="world_model.compile settings to measure in turn (auto true false)")
    parser.add_argument("--profile", type=int, default=0, metavar="ROWS", help="also print the profiler's top ROWS operators of one plan")
    parser.add_argument("--cap-isa", choices=sorted(ISA_CAPS), help="run as a CPU limited to this instruction set would")
    parser.add_argument("--world-models", nargs="+", default=None,
                        help="world_model configs to measure in turn, side by side (e.g. sim lewm, or lewm:FILE)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for plan_goal, e.g. planner.num_samples=300")
    args = parser.parse_args()
    if args.cap_isa:
        cap_isa(args.cap_isa)
    if args.profile:  # name each kernel inductor generates (set before anything compiles)
        torch._inductor.config.cpp.enable_kernel_profile = True
    names = args.world_models or [None]
    cfgs = [compose_config("plan_goal", args.overrides + (world_model_overrides(n) if n else [])) for n in names]
    cfg = cfgs[0]
    device = cfg.world_model.device
    print(f"CPU: {cpu_info().describe()}; torch {torch.__version__}, ATen vector ISA {torch.backends.cpu.get_cpu_capability()}")
    if device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    peaks = {torch.float32: dense_matmul_gflops(device, torch.float32)}
    results = []
    for name, c in zip(names, cfgs):
        for d in args.dtypes or [c.world_model.dtype]:
            for comp in args.compile or [c.world_model.get("compile", False)]:
                if name:
                    print(f"\n#### world_model={name}")
                results.append({**measure(args, c, d, comp, peaks), "world_model": name or "default"})
    if len(results) > 1:
        base = results[0]
        for r in results[1:]:
            faster = base["cached_s"] / r["cached_s"]
            how = f"{faster:.2f}x faster" if faster >= 1 else f"{1 / faster:.2f}x slower"
            print(f"\n{r['world_model']} {r['dtype']} {r['rollout']} vs {base['world_model']} {base['dtype']} {base['rollout']}: "
                  f"{r['cached_s'] / base['cached_s']:.3f}x the time per action (cached rollout; {how})")

if __name__ == "__main__":
    main()
