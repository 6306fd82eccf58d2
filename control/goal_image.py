"""Goal images: reading one a user brings, with clear errors and documented conversions, and the files
render-goal writes and plan-goal reads.

Accepted: any format Pillow reads (PNG, JPEG, ...). Conversions, stated so nobody is surprised:
grayscale and palette images are expanded to RGB; an alpha channel is composited onto black (what an
RGBA render of our scene over an empty background means); 16-bit images are scaled to 8 bits. Any size
of at least 32x32 px is accepted: the encoder's preprocessing centre-crops to a square and resizes.

On disk, `goal.png` is the goal photo; `goal.json` beside it is the sim episode spec that reproduces the
start, plus the camera it was photographed from; multi-stage tasks add their sub-goal photos
`goal.subgoal1.png`, ... A photo from a real camera has no sidecar, and that is fine.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 32


class GoalImageError(ValueError):
    pass


def load_goal_image(path: str | Path) -> np.ndarray:
    """uint8 [H, W, 3] RGB from an image file."""
    path = Path(path)
    if not path.is_file():
        raise GoalImageError(f"goal image {path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated file fails here, not later inside the planner
            image = _to_rgb(im, path)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise GoalImageError(f"goal image {path}: not a readable image ({e})") from e
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise GoalImageError(f"goal image {path}: {w}x{h} px is too small (at least {MIN_SIDE}x{MIN_SIDE})")
    return image


def _to_rgb(im: Image.Image, path: Path) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        arr = (arr / max(arr.max(), 1.0) * 255.0).round().astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
        return (rgba[..., :3] * (rgba[..., 3:] / 255.0)).round().astype(np.uint8)
    if im.mode in ("RGB", "L", "P", "CMYK", "YCbCr", "1"):
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    raise GoalImageError(f"goal image {path}: unsupported pixel format {im.mode!r}")


def sidecar_path(image_path: Path) -> Path:
    return image_path.with_suffix(".json")


def subgoal_path(image_path: Path, index: int) -> Path:
    return image_path.with_name(f"{image_path.stem}.subgoal{index}{image_path.suffix}")


def render_goal(task: str, seed: int, image_size: int, camera: str, out: Path) -> tuple[Path, Path, list[Path]]:
    """Photograph the goal (and any sub-goals) of `task`'s episode for `seed`; (goal, sidecar, sub-goal paths)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    from vjepa_planning.envs import make_task_env

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


def load_episode_spec(goal: Path) -> tuple[Any, str | None]:
    """The sim episode that `goal` was rendered for, and the camera it was photographed from (None, None
    for a goal without render-goal's sidecar, e.g. a photo from a real camera); the spec is an envs.tasks.EpisodeSpec."""
    from vjepa_planning.envs.tasks import EpisodeSpec

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
