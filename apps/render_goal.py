"""render-goal --task T --seed S --out goal.png

Samples the task's episode for that seed, photographs the goal configuration, and writes the image plus
`goal.json` beside it: the episode spec that reproduces the start, which plan-goal reads when present."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig
from PIL import Image

from apps.cli import parse
from envs import make_task_env


def sidecar_path(image_path: Path) -> Path:
    return image_path.with_suffix(".json")


def render_goal(cfg: DictConfig) -> tuple[Path, Path]:
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = make_task_env(cfg.env.task, image_size=int(cfg.env.image_size))
    try:
        env.reset(seed=int(cfg.env.seed))
        goal = env.goal_image()
    finally:
        env.close()
    Image.fromarray(goal).save(out)
    spec_path = sidecar_path(out)
    spec_path.write_text(env.spec_.to_json())
    return out, spec_path


def main(argv: list[str] | None = None) -> None:
    cfg = parse(
        "render_goal",
        __doc__.splitlines()[0],
        {
            "--task": ("env.task", "task: reach, grasp, reach_with_object or pick_and_place"),
            "--seed": ("env.seed", "episode seed"),
            "--out": ("out", "goal image path (.png)"),
            "--size": ("env.image_size", "image side in pixels"),
        },
        argv,
    )
    image, spec = render_goal(cfg)
    print(json.dumps({"goal_image": str(image), "episode_spec": str(spec)}))


if __name__ == "__main__":
    main()
