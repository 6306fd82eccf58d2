"""Planning time per action: KV-cached rollout vs the reference-style full recompute, and GFLOP/s.

    python benchmarks/planning_speed.py                   # shipped sim model, default planner settings
    python benchmarks/planning_speed.py --official-size   # ViT-g width, 256 patches, 24x1024 predictor (GPU)

Runs the CEM planner as plan-goal does (context of `context_frames` observed frames, horizon, samples,
iterations from configs/planner/cem.yaml unless overridden) on real sim frames, first with the cached
rollout and then with a rollout that re-runs the whole history at every imagined step (as the public
V-JEPA 2-AC code does), and prints the median seconds per action of each and their ratio. FLOPs of one
planning call are counted with torch's FlopCounterMode; achieved GFLOP/s is compared with a dense
matmul measured on the same device."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
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


def dense_matmul_gflops(device: str, dtype: torch.dtype, n: int = 2048) -> float:
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


def context_inputs(wm, frames: int, device: str):
    """A real sim context: `frames` observations of a reach episode and the actions between them."""
    import envs

    env = envs.make_task_env("reach", image_size=256)
    obs, _ = env.reset(seed=0)
    images, states, actions = [obs["image"]], [obs["state"]], []
    for _ in range(frames - 1):
        a = np.array([0.03, -0.02, 0.01, 0, 0, 0, 0.0])
        obs, *_ = env.step(a)
        images.append(obs["image"])
        states.append(obs["state"])
        actions.append(a)
    goal = env.goal_image()
    env.close()
    z = wm.encode(np.stack(images))[None]  # [1, T0, N, D]
    s = torch.tensor(np.stack(states), dtype=torch.float32, device=device)[None]
    past = torch.tensor(np.stack(actions), dtype=torch.float32, device=device)[None] if actions else None
    return (z if frames > 1 else z[:, 0]), (s if frames > 1 else s[:, 0]), past, wm.encode(goal)


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


def main() -> None:
    from apps.cli import compose_config
    from apps.models import load_world_model, planner_config
    from planners import CEMPlanner

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-size", action="store_true", help="random weights at V-JEPA 2-AC size (needs a GPU)")
    parser.add_argument("--random-init", action="store_true", help="the sim architecture with random weights")
    parser.add_argument("--repeats", type=int, default=7, help="timed (cached, reference) pairs")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for plan_goal, e.g. planner.num_samples=300")
    args = parser.parse_args()
    cfg = compose_config("plan_goal", args.overrides)
    device = cfg.world_model.device
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[cfg.world_model.dtype]
    if args.official_size or args.random_init:
        from worldmodel.encoder import build_encoder
        from worldmodel.predictor import ACPredictor
        from worldmodel.world_model import VJEPAWorldModel

        torch.manual_seed(0)
        if args.official_size:
            with torch.device(device):
                enc = build_encoder("vit_giant", img_size=256)
                pred = ACPredictor(embed_dim=1408, predictor_embed_dim=1024, depth=24, num_heads=16, grid_size=16)
        else:  # the shipped architecture (configs/encoder/sim_mini.yaml, configs/predictor/sim_small.yaml)
            from omegaconf import OmegaConf

            from apps.cli import CONFIG_DIR

            e = OmegaConf.load(CONFIG_DIR / "encoder" / "sim_mini.yaml")
            p = OmegaConf.load(CONFIG_DIR / "predictor" / "sim_small.yaml")
            enc = build_encoder(e.name, patch_size=e.patch_size, tubelet_size=e.tubelet_size, img_size=e.img_size)
            pred = ACPredictor(
                embed_dim=enc.embed_dim, predictor_embed_dim=p.predictor_embed_dim, depth=p.depth,
                num_heads=p.num_heads, mlp_ratio=p.mlp_ratio, grid_size=e.img_size // e.patch_size,
            )
        wm = VJEPAWorldModel.from_modules(enc, pred, device=device, dtype=dtype)
    else:
        wm = load_world_model(cfg.world_model)
    pcfg = planner_config(cfg.planner)
    frames = int(cfg.planner.context_frames)
    z, s, past, z_goal = context_inputs(wm, frames, device)
    print(
        f"device {device} dtype {cfg.world_model.dtype} threads {torch.get_num_threads()}: context {frames} frames, "
        f"horizon {pcfg.horizon}, {pcfg.num_samples} samples x {pcfg.iterations} iterations, tokens/frame {z.shape[-2]}, dim {z.shape[-1]}"
    )
    cached = CEMPlanner(wm, pcfg)
    reference = CEMPlanner(FullRecompute(wm), pcfg)
    t_cached, t_ref = time_pairs(cached, reference, z, s, past, z_goal, args.repeats, device)
    with FlopCounterMode(display=False) as counter:
        cached.plan(z, s, z_goal, past_actions=past)
    flops = counter.get_total_flops()
    med_c, med_r = statistics.median(t_cached), statistics.median(t_ref)
    peak = dense_matmul_gflops(device, dtype)
    print(f"cached rollout:      {med_c:.3f} s per action (median of {len(t_cached)})")
    print(f"reference rollout:   {med_r:.3f} s per action (median of {len(t_ref)})")
    ratios = sorted(r / c for c, r in zip(t_cached, t_ref))
    print(f"speed-up:            {med_r / med_c:.2f}x (per pair: min {ratios[0]:.2f}x, median {statistics.median(ratios):.2f}x, max {ratios[-1]:.2f}x)")
    print(f"achieved:            {flops / med_c / 1e9:.1f} GFLOP/s ({flops / 1e9:.1f} GFLOP per action) vs dense matmul {peak:.1f} GFLOP/s ({100 * flops / med_c / 1e9 / peak:.0f}%)")


if __name__ == "__main__":
    main()
