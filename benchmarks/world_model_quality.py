"""World-model quality by task phase, on held-out oracle episodes, without running the planner.

    python benchmarks/world_model_quality.py --episodes 6 [plan-goal overrides]
    python benchmarks/world_model_quality.py --episodes 6 env.camera=exterior \
        world_model.encoder=checkpoints/encoder_sim_mini.safetensors world_model.predictor=checkpoints/predictor_sim_small.safetensors

Noisy-oracle episodes of all four tasks (seeds from --first-seed, default 3000: outside the training data,
the benchmark seeds 1000+ and the tuning seeds 2000+) are rendered from the model's camera. Every step is
labelled with the oracle's phase: reach (the reach task), approach (to the cube), close (on the cube), lift,
carry (reach-with-object, and pick-and-place's carry), release (pick-and-place: lower, open, retreat). For
each step, from the planner's context (the last `planner.context_frames` frames and executed actions), it
scores what planning needs:

* rollout L1 of the predicted next two frames against the real ones, next to copying the last frame;
* action ranking: the executed action and 7 alternatives (gripper flipped, ±2.5 cm on each axis), scored by
  the predicted energy to the real next frame and to the stage's goal photo (the sub-goal photo the
  benchmark plans toward in that phase). `top1` is how often the executed action ranks first (chance 1/8);
  `grip` how often it beats the gripper-flipped one (chance 1/2): what grasping and releasing hinge on;
  where the world model has a gripper readout, "gripper goal, planner's energy" adds the planner's
  `gripper_goal_weight` x |imagined gripper - the photo's| (read by the readout) to the energy to the photo;
* the energy landscape's argmin error: the energy to the real next frame over a 7 x 7 x 7 grid of Δxyz
  (±7.5 cm, the safety limit, 2.5 cm apart; the executed gripper), and how far (cm) its minimum lies from
  the executed Δxyz, next to the grid's own floor (how far the nearest grid point is). V-JEPA 2's
  paper plots the same landscape; `--out DIR` writes one Δx-Δy slice per phase (landscape.png), the
  per-phase table (quality.md) and every figure (quality.json).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vjepa_planning.worldmodel.protocol import ReadsGripper

TASKS = ("reach", "grasp", "reach_with_object", "pick_and_place")
PHASES = ("reach", "approach", "close", "lift", "carry", "release")
NUDGE = 0.025  # m: the ranking's alternative actions
GRID = np.linspace(-0.075, 0.075, 7)  # m per axis (the safety limit): the energy landscape, 2.5 cm apart


@dataclass
class Episode:
    """One oracle episode: T actions between T + 1 observations, the phase of each action, and the goal
    photo each step is planned toward (an index into `goals`)."""

    task: str
    images: list[np.ndarray] = field(default_factory=list)  # T + 1 uint8 [H, W, 3]
    states: list[np.ndarray] = field(default_factory=list)  # T + 1 [7]
    actions: list[np.ndarray] = field(default_factory=list)  # T [7]
    phases: list[str] = field(default_factory=list)  # T
    goal_index: list[int] = field(default_factory=list)  # T
    goals: list[np.ndarray] = field(default_factory=list)  # the sub-goal photos, then the goal photo


def phase_and_goal(task: str, oracle, n_goals: int) -> tuple[str, int]:
    """The phase the oracle's last action belongs to, and which goal photo that phase plans toward (grasp: the
    hand open around the cube, closed on it, then the goal; pick-and-place: the same two, then held above the
    spot, then the goal)."""
    if task == "reach":
        return "reach", n_goals - 1
    if task == "reach_with_object":
        return "carry", n_goals - 1
    if oracle.phase in ("above", "descend"):
        return "approach", 0
    if oracle.phase == "close":
        return "close", 1
    if task == "grasp" or oracle.phase == "lift":
        return "lift", 2
    if oracle.place_phase == "carry":
        return "carry", 2
    return "release", n_goals - 1


def collect_episode(task: str, seed: int, image_size: int, camera: str, noise: float) -> Episode:
    from vjepa_planning import envs
    from vjepa_planning.envs.policies import NoisyOracle

    env = envs.make_task_env(task, image_size=image_size, camera=camera)
    obs, _ = env.reset(seed=seed)
    ep = Episode(task, goals=env.unwrapped.subgoal_images())
    oracle = env.unwrapped.oracle()
    policy = NoisyOracle(oracle, np.random.default_rng(seed), noise=noise)
    ep.images.append(obs["image"])
    ep.states.append(obs["state"])
    for _ in range(env.unwrapped.max_steps):
        action = policy.act(env.unwrapped.scene)
        phase, goal = phase_and_goal(task, oracle, len(ep.goals))
        obs, *_ = env.step(action)
        ep.images.append(obs["image"])
        ep.states.append(obs["state"])
        ep.actions.append(action)
        ep.phases.append(phase)
        ep.goal_index.append(goal)
    env.close()
    return ep


def ranking_candidates(executed: np.ndarray, gripper_now: float) -> np.ndarray:
    """[8, 7]: the executed action, the gripper flipped, then ±NUDGE on x, y and z."""
    flipped = executed.copy()
    closes = gripper_now + executed[6] >= 0.5
    flipped[6] = -1.0 if closes else 1.0  # open instead of close, or close instead of open
    out = [executed, flipped]
    for axis in range(3):
        for sign in (1.0, -1.0):
            a = executed.copy()
            a[axis] += sign * NUDGE
            out.append(a)
    return np.stack(out)


def grid_candidates(executed: np.ndarray) -> np.ndarray:
    """[343, 7]: Δxyz on GRID^3, the rest as executed."""
    dx, dy, dz = np.meshgrid(GRID, GRID, GRID, indexing="ij")
    out = np.repeat(executed[None], dx.size, axis=0)
    out[:, 0], out[:, 1], out[:, 2] = dx.ravel(), dy.ravel(), dz.ravel()
    return out


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[..., N, D] x [..., N, D] -> [...] mean absolute difference (float32)."""
    return (a.float() - b.float()).abs().mean(dim=(-2, -1))


def ranks_first(energy: torch.Tensor) -> bool:
    """Whether candidate 0 (the executed action) has strictly the lowest energy."""
    return bool(energy[0] < energy[1:].min())


def score_episode(wm, ep: Episode, context_frames: int, stride: int = 1, gripper_goal_weight: float = 0.0) -> list[dict]:
    """One row per evaluated step (every `stride`-th step with two real frames after it). With a world model
    that reads the gripper (a readout) and a weight, "grip_goal_plan" also scores against the stage's photo
    with the planner's whole energy: + weight x |imagined gripper - the photo's|."""
    z = wm.encode(np.stack(ep.images)).float()  # [T + 1, N, D]
    z_goals = wm.encode(np.stack(ep.goals)).float()  # [G, N, D]
    reads = wm.gripper_closed(np.stack(ep.goals)) if gripper_goal_weight and isinstance(wm, ReadsGripper) else None  # [G] | None
    states = torch.tensor(np.stack(ep.states), dtype=torch.float32)  # [T + 1, 7]
    actions = torch.tensor(np.stack(ep.actions), dtype=torch.float32)  # [T, 7]
    rows = []
    for t in range(0, len(ep.actions) - 1, stride):
        t0 = max(0, t - context_frames + 1)
        if t0 == t:
            ctx = wm.rollout_context(z[t][None], states[t][None])  # [1, N, D], [1, 7]
        else:
            past = actions[t0:t][None]  # [1, T0 - 1, 7]
            ctx = wm.rollout_context(z[t0 : t + 1][None], states[t0 : t + 1][None], past_actions=past)
        executed = ep.actions[t]
        rank_a = ranking_candidates(executed, float(ep.states[t][6]))  # [8, 7]
        grid_a = grid_candidates(executed)  # [343, 7]
        one_step = torch.tensor(np.concatenate([rank_a, grid_a]), dtype=torch.float32)[:, None]  # [351, 1, 7]
        pred1 = wm.rollout_from(ctx, one_step)[:, 0].float()  # [351, N, D]
        pred2 = wm.rollout_from(ctx, actions[t : t + 2][None])[0].float()  # [2, N, D]
        e_future = l1(pred1, z[t + 1][None])  # [351]
        e_goal = l1(pred1[: len(rank_a)], z_goals[ep.goal_index[t]][None])  # [8]
        e_plan = e_goal
        if reads is not None:
            g_after = (float(ep.states[t][6]) + torch.tensor(rank_a[:, 6], dtype=torch.float32)).clamp(0.0, 1.0)  # [8]
            e_plan = e_goal + gripper_goal_weight * (g_after - float(reads[ep.goal_index[t]])).abs()
        e_rank = e_future[: len(rank_a)]
        e_grid = e_future[len(rank_a) :].numpy()
        best = grid_a[int(np.argmin(e_grid))]
        rows.append(
            {
                "task": ep.task,
                "phase": ep.phases[t],
                "step": t,
                "l1_model": [float(l1(pred2[k], z[t + 1 + k])) for k in range(2)],
                "l1_copy": [float(l1(z[t], z[t + 1 + k])) for k in range(2)],
                "top1_future": ranks_first(e_rank),  # strictly: a model blind to actions ties, and fails
                "top1_goal": ranks_first(e_goal),
                "grip_future": bool(e_rank[0] < e_rank[1]),
                "grip_goal": bool(e_goal[0] < e_goal[1]),
                "grip_goal_plan": bool(e_plan[0] < e_plan[1]),
                "argmin_error_cm": float(100 * np.linalg.norm(best[:3] - executed[:3])),
                "grid_floor_cm": float(100 * np.min(np.linalg.norm(grid_a[:, :3] - executed[:3], axis=1))),
                "grid": e_grid.reshape(len(GRID), len(GRID), len(GRID)).tolist(),
                "executed": executed[:3].tolist(),
            }
        )
    return rows


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per phase (and 'all'): medians of the L1s and argmin error, rates of the rankings."""
    out = {}
    for phase in (*PHASES, "all"):
        sel = [r for r in rows if phase in ("all", r["phase"])]
        if not sel:
            continue
        m = np.array([r["l1_model"] for r in sel])  # [n, 2]
        c = np.array([r["l1_copy"] for r in sel])
        out[phase] = {
            "n": len(sel),
            "l1_model": m.mean(0).tolist(),
            "l1_copy": c.mean(0).tolist(),
            "l1_ratio": (m.mean(0) / c.mean(0)).tolist(),
            **{k: float(np.mean([r[k] for r in sel])) for k in ("top1_future", "top1_goal", "grip_future", "grip_goal", "grip_goal_plan")},
            "argmin_error_cm": float(np.median([r["argmin_error_cm"] for r in sel])),
            "grid_floor_cm": float(np.median([r["grid_floor_cm"] for r in sel])),
        }
    return out


def markdown_table(summary: dict[str, dict]) -> str:
    head = (
        "| phase | steps | L1 step 1 model / copy (ratio) | L1 step 2 model / copy (ratio) | top-1 future | top-1 goal "
        "| gripper future | gripper goal | gripper goal, planner's energy | argmin error (cm, median; grid floor) |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for phase, s in summary.items():
        l1s = [f"{s['l1_model'][k]:.4f} / {s['l1_copy'][k]:.4f} ({s['l1_ratio'][k]:.2f})" for k in range(2)]
        lines.append(
            f"| {phase} | {s['n']} | {l1s[0]} | {l1s[1]} | {s['top1_future']:.0%} | {s['top1_goal']:.0%} "
            f"| {s['grip_future']:.0%} | {s['grip_goal']:.0%} | {s['grip_goal_plan']:.0%} | {s['argmin_error_cm']:.1f} ({s['grid_floor_cm']:.1f}) |"
        )
    return head + "\n".join(lines)


def plot_landscapes(rows: list[dict], path: Path) -> None:
    """One Δx-Δy energy slice per phase (at the grid Δz nearest the executed one), executed action marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = {}
    for r in rows:
        picks.setdefault(r["phase"], r)
    fig, axes = plt.subplots(1, len(picks), figsize=(3.2 * len(picks), 3.2), squeeze=False)
    for ax, (phase, r) in zip(axes[0], picks.items()):
        ex = np.array(r["executed"])
        k = int(np.argmin(np.abs(GRID - ex[2])))
        energy = np.array(r["grid"])[:, :, k]  # [x, y]
        half = 50 * (GRID[1] - GRID[0])  # cm: cells centred on the grid points
        ext = [100 * GRID[0] - half, 100 * GRID[-1] + half] * 2
        ax.imshow(energy.T, origin="lower", extent=ext, cmap="viridis")
        i, j = np.unravel_index(int(np.argmin(energy)), energy.shape)
        ax.plot(100 * ex[0], 100 * ex[1], "r*", ms=12, label="executed")
        ax.plot(100 * GRID[i], 100 * GRID[j], "wx", ms=10, mew=2, label="argmin")
        ax.set_title(f"{phase} ({r['task']}, step {r['step']})", fontsize=9)
        ax.set_xlabel("Δx (cm)")
        ax.set_ylabel("Δy (cm)")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle("predicted energy to the real next frame (Δz nearest the executed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    from vjepa_planning.control.build import compose_and_load

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=6, help="episodes per task")
    parser.add_argument("--first-seed", type=int, default=3000)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--stride", type=int, default=1, help="score every n-th step")
    parser.add_argument("--noise", type=float, default=0.015, help="the oracle's action noise (as in the training data)")
    parser.add_argument("--out", type=Path, default=None, help="write quality.json, quality.md and landscape.png here")
    parser.add_argument("overrides", nargs="*", help="plan-goal config overrides (world model, camera)")
    args = parser.parse_args()
    cfg, wm = compose_and_load("plan_goal", args.overrides)
    context_frames = int(cfg.planner.context_frames)
    tasks = args.tasks.split(",")
    rows = []
    jobs = [(task, seed) for task in tasks for seed in range(args.first_seed, args.first_seed + args.episodes)]
    for task, seed in tqdm(jobs, desc="world-model quality", unit="ep"):
        ep = collect_episode(task, seed, int(cfg.env.image_size), str(cfg.env.camera), args.noise)
        rows.extend(score_episode(wm, ep, context_frames, args.stride, float(cfg.planner.gripper_goal_weight)))
    summary = summarise(rows)
    files = cfg.world_model.path if cfg.world_model.source == "lewm" else f"{cfg.world_model.encoder} + {cfg.world_model.predictor}"
    print(f"world model: {files}, camera {cfg.env.camera}, "
          f"seeds {args.first_seed}..{args.first_seed + args.episodes - 1} x {tasks}")
    print(markdown_table(summary))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "quality.md").write_text(markdown_table(summary) + "\n")
        slim = [{k: v for k, v in r.items() if k != "grid"} for r in rows]
        (args.out / "quality.json").write_text(json.dumps({"summary": summary, "rows": slim}, indent=1))
        plot_landscapes(rows, args.out / "landscape.png")
        print(f"wrote {args.out}/quality.md, quality.json, landscape.png")


if __name__ == "__main__":
    main()
