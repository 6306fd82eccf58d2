"""render-goal --task T --seed S --out goal.png

Samples the task's episode for that seed, photographs the goal configuration, and writes the image plus
`goal.json` beside it: the episode spec that reproduces the start and the camera it was photographed
from, which plan-goal reads when present.
Multi-stage tasks (grasp, pick_and_place) also get their sub-goal photos, `goal.subgoal1.png`, ...: the
scene posed at each stage, for `plan-goal --subgoals`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.control.goal_image import render_goal


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
    image, spec, subgoals = render_goal(str(cfg.env.task), int(cfg.env.seed), int(cfg.env.image_size), str(cfg.env.camera), Path(cfg.out))
    print(json.dumps({"goal_image": str(image), "episode_spec": str(spec), "subgoal_images": [str(p) for p in subgoals]}))
    if subgoals:
        print(f"plan through the sub-goals with: plan-goal --goal {image} --subgoals {','.join(str(p) for p in subgoals)} "
              f"env.camera={cfg.env.camera}")


if __name__ == "__main__":
    sys.exit(main())
