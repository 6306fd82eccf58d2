"""render-goal --task T --seed S --out goal.png

Samples the task's episode for that seed, photographs the goal configuration, and writes the image plus
`goal.json` beside it: the episode spec that reproduces the start and the camera it was photographed
from, which plan-goal reads when present.
Multi-stage tasks (grasp, pick_and_place) also get their sub-goal photos, `goal.subgoal1.png`, ...: the
scene posed at each stage, for `plan-goal --subgoals`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from omegaconf import DictConfig
from PIL import Image

from apps.cli import command, parse
from envs import make_task_env


def sidecar_path(image_path: Path) -> Path:
    return image_path.with_suffix(".json")


def subgoal_path(image_path: Path, index: int) -> Path:
    return image_path.with_name(f"{image_path.stem}.subgoal{index}{image_path.suffix}")


def render_goal(cfg: DictConfig) -> tuple[Path, Path, list[Path]]:
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = make_task_env(cfg.env.task, image_size=int(cfg.env.image_size), camera=str(cfg.env.camera))
    try:
        env.reset(seed=int(cfg.env.seed))
        *subgoals, goal = env.subgoal_images()
    finally:
        env.close()
    Image.fromarray(goal).save(out)
    subgoal_paths = [subgoal_path(out, i) for i in range(1, len(subgoals) + 1)]
    for path, image in zip(subgoal_paths, subgoals):
        Image.fromarray(image).save(path)
    spec_path = sidecar_path(out)  # the camera rides along so plan-goal can refuse a goal seen from another view
    spec_path.write_text(json.dumps({**asdict(env.spec_), "camera": str(cfg.env.camera)}, indent=2))
    return out, spec_path, subgoal_paths


@command("render-goal")
def main(argv: list[str] | None = None) -> None:
    cfg = parse(
        "render_goal",
        __doc__.splitlines()[0],
        {
            "--task": ("env.task", "task: reach, grasp, reach_with_object or pick_and_place"),
            "--seed": ("env.seed", "episode seed"),
            "--out": ("out", "goal image path (.png)"),
            "--size": ("env.image_size", "image side in pixels"),
            "--camera": ("env.camera", "sim camera: exterior | workspace (the one the world model was trained on)"),
        },
        argv,
    )
    image, spec, subgoals = render_goal(cfg)
    print(json.dumps({"goal_image": str(image), "episode_spec": str(spec), "subgoal_images": [str(p) for p in subgoals]}))
    if subgoals:
        print(f"plan through the sub-goals with: plan-goal --goal {image} --subgoals {','.join(str(p) for p in subgoals)} "
              f"env.camera={cfg.env.camera}")


if __name__ == "__main__":
    sys.exit(main())
