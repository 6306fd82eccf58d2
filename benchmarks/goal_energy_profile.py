"""Energy to the goal image against the hand's distance to the goal, along scripted reach episodes.

    python benchmarks/goal_energy_profile.py --seeds 10 --world-models sim lewm

A planner with a short horizon can only follow an energy that falls as the hand nears the goal, from as
far away as episodes start. For each world model this encodes every frame of noise-free oracle reach
episodes (seeds from --first-seed, default 3000: outside the training data, the benchmark seeds 1000+ and
the tuning seeds 2000+) and the episode's goal image, and prints the mean energy (planners/energy.py, L1)
of the frames whose hand-to-goal distance falls in each band, as a share of the energy at the start of the
episode: a profile that stays near 1 over the far bands is a plateau the planner cannot climb down.
"""

from __future__ import annotations

import argparse

import numpy as np

BANDS_CM = (0, 1, 3, 6, 10, 15, 20, 30, 60)


def episode(seed: int, image_size: int, camera: str, steps: int = 16):
    """Frames, hand-to-goal distances and the goal image of one oracle reach episode."""
    from vjepa_planning import envs
    env = envs.make_task_env("reach", image_size=image_size, camera=camera)
    obs, info = env.reset(seed=seed)
    oracle = env.oracle()
    frames, dists = [obs["image"]], [info["distance"]]
    for _ in range(steps):
        obs, _, _, _, info = env.step(oracle.act(env.scene))
        frames.append(obs["image"])
        dists.append(info["distance"])
    goal = env.goal_image()
    env.close()
    return np.stack(frames), np.asarray(dists), goal


def main() -> None:
    from vjepa_planning.configs import compose_config
    from vjepa_planning.control.build import load_world_model, world_model_overrides
    from omegaconf import OmegaConf
    from vjepa_planning.planners.energy import l1_energy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=3000)
    parser.add_argument("--world-models", nargs="+", default=["sim"], help="world_model configs, e.g. sim lewm (or lewm:FILE)")
    parser.add_argument("overrides", nargs="*", help="plan-goal overrides (env.camera, env.image_size, ...)")
    args = parser.parse_args()
    cfg = compose_config("plan_goal", args.overrides)
    models = {n: load_world_model(OmegaConf.to_container(compose_config("plan_goal", [*args.overrides, *world_model_overrides(n)]).world_model))
              for n in args.world_models}
    shares: dict[str, list[tuple[float, float]]] = {n: [] for n in models}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        frames, dists, goal = episode(seed, int(cfg.env.image_size), str(cfg.env.camera))
        for name, wm in models.items():
            z = wm.encode(frames)  # [T, N, D]
            e = l1_energy(z[:, None], wm.encode(goal)).numpy()  # [T]
            shares[name] += [(100 * d, ei / max(e[0], 1e-9)) for d, ei in zip(dists, e)]
    bands = list(zip(BANDS_CM[:-1], BANDS_CM[1:]))
    print(f"reach, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}, camera {cfg.env.camera}: "
          "mean energy to the goal image as a share of the episode's starting energy, by hand-to-goal distance")
    print("| world model | " + " | ".join(f"{lo}–{hi} cm" for lo, hi in bands) + " |")
    print("|---|" + "---|" * len(bands))
    for name, pts in shares.items():
        d, s = np.asarray(pts).T
        cells = [f"{s[(d >= lo) & (d < hi)].mean():.2f} ({((d >= lo) & (d < hi)).sum()})" if ((d >= lo) & (d < hi)).any()
                 else "–" for lo, hi in bands]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
