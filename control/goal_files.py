"""Goal images on disk as render-goal writes them and plan-goal reads them.

`goal.png` is the goal photo; `goal.json` beside it is the sim episode spec that reproduces the start, plus
the camera it was photographed from; multi-stage tasks add their sub-goal photos `goal.subgoal1.png`, ...
A photo from a real camera has no sidecar, and that is fine."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from envs import make_task_env
from envs.tasks import EpisodeSpec


def sidecar_path(image_path: Path) -> Path:
    return image_path.with_suffix(".json")


def subgoal_path(image_path: Path, index: int) -> Path:
    return image_path.with_name(f"{image_path.stem}.subgoal{index}{image_path.suffix}")


def render_goal(task: str, seed: int, image_size: int, camera: str, out: Path) -> tuple[Path, Path, list[Path]]:
    """Photograph the goal (and any sub-goals) of `task`'s episode for `seed`; (goal, sidecar, sub-goal paths)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    env = make_task_env(task, image_size=image_size, camera=camera)
    try:
        env.reset(seed=seed)
        *subgoals, goal = env.subgoal_images()
    finally:
        env.close()
    Image.fromarray(goal).save(out)
    subgoal_paths = [subgoal_path(out, i) for i in range(1, len(subgoals) + 1)]
    for path, image in zip(subgoal_paths, subgoals):
        Image.fromarray(image).save(path)
    spec_path = sidecar_path(out)  # the camera rides along so plan-goal can refuse a goal seen from another view
    spec_path.write_text(json.dumps({**asdict(env.spec_), "camera": camera}, indent=2))
    return out, spec_path, subgoal_paths


def load_episode_spec(goal: Path) -> tuple[EpisodeSpec | None, str | None]:
    """The sim episode that `goal` was rendered for, and the camera it was photographed from (None, None
    for a goal without render-goal's sidecar, e.g. a photo from a real camera)."""
    path = sidecar_path(goal)
    if not path.exists():
        return None, None
    text = path.read_text()
    try:
        return EpisodeSpec.from_json(text), json.loads(text).get("camera")
    except ValueError as e:
        raise ValueError(f"{path}: not a valid episode spec ({e})") from e


def check_goal_camera(goal: Path, goal_camera: str | None, camera: str, driver_type: str) -> None:
    """A sim goal photographed from another camera than the one the episode is filmed with can never be reached."""
    if driver_type == "sim" and goal_camera is not None and goal_camera != camera:
        raise ValueError(
            f"goal image {goal} was rendered from the sim's {goal_camera!r} camera ({sidecar_path(goal)}), but "
            f"env.camera={camera}; set env.camera={goal_camera} or render the goal with --camera {camera}"
        )
