"""How much the planning energy sees the gripper and the cube, next to how much it sees a 5 cm move.

    python benchmarks/gripper_sensitivity.py --seeds 10 [plan-goal overrides]
    python benchmarks/gripper_sensitivity.py --seeds 10 world_model.predictor=checkpoints/predictor_sim_workspace.safetensors env.camera=workspace

For each grasp seed the oracle brings the open hand around the cube (the step before it would close);
from there the shipped world model predicts two steps for four plans and scores them against the goal
image (cube lifted in the closed hand) with the planner's L1 energy:
    close + lift, open + lift, close + stay, stay.
`close + lift` vs `open + lift` is what grasping hinges on; `stay` vs `open + lift` is what a 5 cm
move is worth. Against the grasp sub-goal photo (the hand closed on the cube) it compares `close + stay`
with `stay`, and the real frames before and after the oracle closes the hand. For reach-with-object seeds it also measures, on real rendered frames, how much the
energy changes when the carried cube is dropped (gripper opened for two steps) instead of held.
Prints per-seed values and medians.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

LIFT = [0, 0, 0.05, 0, 0, 0, 0]
PLANS = {
    "close+lift": [[0, 0, 0, 0, 0, 0, 1], LIFT],
    "open+lift": [[0] * 7, LIFT],
    "close+stay": [[0, 0, 0, 0, 0, 0, 1], [0] * 7],
    "stay": [[0] * 7, [0] * 7],
}


def pre_close_context(env, seed: int, frames: int):
    """Run the grasp oracle until its next action would close the hand; the last `frames` observations."""
    obs, _ = env.reset(seed=seed)
    oracle, scene = env.unwrapped.oracle(), env.unwrapped.scene
    images, states, actions = [obs["image"]], [obs["state"]], []
    while True:
        a = oracle.act(scene)
        if oracle.phase == "close":
            break
        obs, *_ = env.step(a)
        images.append(obs["image"])
        states.append(obs["state"])
        actions.append(a)
    return images[-frames:], states[-frames:], actions[-(frames - 1) :] if frames > 1 else []


def main() -> None:
    from vjepa_planning import envs
    from vjepa_planning.control.build import compose_and_load
    from vjepa_planning.planners.energy import l1_energy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("overrides", nargs="*", help="plan-goal config overrides (world model, camera)")
    args = parser.parse_args()
    cfg, wm = compose_and_load("plan_goal", args.overrides)
    frames = int(cfg.planner.context_frames)
    plans = torch.tensor(list(PLANS.values()), dtype=torch.float32)  # [4, 2, 7]
    grasp_rows, drop_rows = [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        env = envs.make_task_env("grasp", image_size=int(cfg.env.image_size), camera=str(cfg.env.camera))
        images, states, actions = pre_close_context(env, seed, frames)
        z = wm.encode(np.stack(images))[None]
        s = torch.tensor(np.stack(states), dtype=torch.float32)[None]
        past = torch.tensor(np.stack(actions), dtype=torch.float32)[None] if actions else None
        if z.shape[1] == 1:
            z, s = z[:, 0], s[:, 0]
        predicted = wm.rollout(z, s, plans, past_actions=past)
        row = dict(zip(PLANS, l1_energy(predicted, wm.encode(env.goal_image())).tolist()))
        # Against the grasp sub-goal photo (hand closed on the cube): predicted, and on real frames before
        # and after the oracle closes the hand.
        closed = [p.pinch for p in env.unwrapped.task.subgoals(env.unwrapped.spec_)].index(True)
        z_sub = wm.encode(env.unwrapped.subgoal_images()[closed])
        sub = dict(zip(PLANS, l1_energy(predicted, z_sub).tolist()))
        row["sub: close"], row["sub: stay"] = sub["close+stay"], sub["stay"]
        oracle, scene = env.unwrapped.oracle(), env.unwrapped.scene
        row["sub real: open"] = float((wm.encode(images[-1]) - z_sub).abs().mean())
        obs = None
        while oracle.phase in ("above", "descend", "close"):
            obs, *_ = env.step(oracle.act(scene))
        row["sub real: closed"] = float((wm.encode(obs["image"]) - z_sub).abs().mean())
        grasp_rows.append(row)
        env.close()

        env = envs.make_task_env("reach_with_object", image_size=int(cfg.env.image_size), camera=str(cfg.env.camera))
        real = {}
        for name, grip in (("hold", 0.0), ("drop", -1.0)):
            obs, _ = env.reset(seed=seed)
            for _ in range(2):
                obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, grip]))
            real[name] = float((wm.encode(obs["image"]) - wm.encode(env.goal_image())).abs().mean())
        drop_rows.append(real)
        env.close()
        print(
            f"seed {seed}: grasp pose, predicted energy " + ", ".join(f"{k} {v:.4f}" for k, v in row.items())
            + f" | carried cube, real frames: hold {real['hold']:.4f}, drop {real['drop']:.4f}"
        )

    def med(values):
        return statistics.median(values)

    close_gain = med([r["open+lift"] - r["close+lift"] for r in grasp_rows])
    move_gain = med([r["stay"] - r["open+lift"] for r in grasp_rows])
    drop_cost = med([r["drop"] - r["hold"] for r in drop_rows])
    sub_pred = med([r["sub: stay"] - r["sub: close"] for r in grasp_rows])
    sub_real = med([r["sub real: open"] - r["sub real: closed"] for r in grasp_rows])
    print(f"median energy gain of closing the hand, grasp sub-goal: predicted {sub_pred:+.4f}, real frames {sub_real:+.4f}")
    print(f"median energy gain of closing the hand before lifting: {close_gain:+.4f}")
    print(f"median energy gain of lifting 5 cm:                    {move_gain:+.4f}")
    print(f"median energy cost of dropping a carried cube (real):  {drop_cost:+.4f}")


if __name__ == "__main__":
    main()
