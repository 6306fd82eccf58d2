"""Import raw DROID episodes into our LeRobot v3.0 trajectory format, V-JEPA 2-AC style.

Raw DROID episode folder (the fields we use)::

    trajectory.h5
        observation/robot_state/cartesian_position   [T, 6]  xyz (m) + extrinsic Euler "xyz" (rad)
        observation/robot_state/gripper_position     [T]     0 open .. 1 closed
    recordings/MP4/<serial>.mp4                      one camera (left view), one frame per h5 step
    recordings/MP4/<serial>-stereo.mp4               side-by-side stereo (used if the mono file is absent)
    metadata_<id>.json                               ext1_cam_serial, ext2_cam_serial, wrist_cam_serial,
                                                     current_task (the language instruction)

What we store (as V-JEPA 2-AC does):

* state = ``[cartesian_position (6), gripper_position (1)]`` of the *observed* robot state; DROID's
  commanded ``action/*`` fields are not used.
* The native 15 Hz stream is resampled to ``fps`` (default 4) by taking, for each target time k/fps,
  the nearest native step (index-based: DROID's MP4 frames are aligned one-to-one with h5 steps).
* The orientation is wrapped into the stack's convention (``robot_pose``: roll in [-pi/2, 3pi/2), so a
  gripper pointing down reads +pi as in the sim; DROID's atan2 range flickers between ±pi there).
* action[t] = state[t+1] - state[t] for position and gripper; the rotation part is the Euler "xyz" of
  R_{t+1} R_tᵀ (a base-frame rotation delta). The last action is zeros (``robot_pose.state_deltas``).
* Frames: centre square crop, resized to ``size`` x ``size`` (area filter), as the encoder crops to a
  centre square anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import av
import h5py
import numpy as np
from tqdm import tqdm

from vjepa_planning.robot_pose import canonical_state, state_deltas
from vjepa_planning.robot_pose.imaging import center_square_crop
from vjepa_planning.worldmodel.data.lerobot import DatasetError, DatasetWriter

__all__ = [
    "DroidEpisode",
    "DroidImportResult",
    "find_droid_episodes",
    "import_droid",
    "read_droid_episode",
    "resample_indices",
]

DROID_FPS = 15
CAMERAS = ("ext1", "ext2", "wrist")


def resample_indices(num_steps: int, native_fps: float, fps: float) -> np.ndarray:
    """Native step nearest to each target time k/fps that lies within the episode."""
    if fps <= 0 or native_fps <= 0:
        raise ValueError("fps and native_fps must be positive")
    if fps > native_fps:
        raise ValueError(f"cannot upsample: fps {fps} > native {native_fps}")
    if num_steps <= 0:
        return np.zeros(0, np.int64)
    k = np.arange(int(np.floor((num_steps - 1) * fps / native_fps + 0.5)) + 1)
    idx = np.floor(k * native_fps / fps + 0.5).astype(np.int64)
    return idx[idx < num_steps]


@dataclass
class DroidEpisode:
    source: Path
    task: str
    native_indices: np.ndarray  # [T] the 15 Hz steps kept
    states: np.ndarray  # [T, 7] float32
    actions: np.ndarray  # [T, 7] float32
    frames: np.ndarray  # uint8 [T, size, size, 3]


def _find_metadata(ep_dir: Path) -> dict:
    paths = sorted(ep_dir.glob("metadata*.json"))
    if not paths:
        raise DatasetError(ep_dir, "no metadata_*.json in the episode folder")
    try:
        meta = json.loads(paths[0].read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(paths[0], f"metadata is not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise DatasetError(paths[0], "metadata must be a JSON object")
    return meta


def _read_states(h5_path: Path) -> np.ndarray:
    if not h5_path.is_file():
        raise DatasetError(h5_path, "trajectory.h5 is missing")
    try:
        with h5py.File(h5_path, "r") as f:
            pos = np.asarray(f["observation/robot_state/cartesian_position"][:], dtype=np.float64)
            grip = np.asarray(f["observation/robot_state/gripper_position"][:], dtype=np.float64).reshape(-1)
    except KeyError as e:
        raise DatasetError(h5_path, f"missing dataset: {e}") from e
    except OSError as e:
        raise DatasetError(h5_path, f"cannot read HDF5 (truncated or corrupt?): {e}") from e
    if pos.ndim != 2 or pos.shape[1] != 6 or len(grip) != len(pos):
        shapes = f"cartesian_position {pos.shape} / gripper_position {grip.shape}"
        raise DatasetError(h5_path, f"{shapes} do not match [T, 6] / [T]")
    return np.concatenate([pos, grip[:, None]], axis=1)


def _video_path(ep_dir: Path, serial: str) -> tuple[Path, bool]:
    """(path, is_stereo): prefer the mono file, fall back to the side-by-side stereo one."""
    mp4 = ep_dir / "recordings" / "MP4"
    for path, stereo in ((mp4 / f"{serial}.mp4", False), (mp4 / f"{serial}-stereo.mp4", True)):
        if path.is_file():
            return path, stereo
    raise DatasetError(mp4 / f"{serial}.mp4", "camera video is missing")


def _square(frame: av.VideoFrame, size: int, stereo: bool) -> np.ndarray:
    """Exact centre square crop (of the left view if stereo), area-resized to size x size."""
    img = frame.to_ndarray(format="rgb24")
    if stereo:  # side-by-side: keep the left view
        img = img[:, : img.shape[1] // 2]
    crop = np.ascontiguousarray(center_square_crop(img))  # [side, side, 3]
    if crop.shape[0] == size:
        return crop
    square = av.VideoFrame.from_ndarray(crop, format="rgb24")
    return square.reformat(width=size, height=size, format="rgb24", interpolation="AREA").to_ndarray()


def _decode_selected(path: Path, keep: np.ndarray, size: int, stereo: bool) -> np.ndarray:
    """Decode the frames at native indices ``keep`` (sorted); stops at the end of the video."""
    wanted = set(int(i) for i in keep)
    last = int(keep[-1]) if len(keep) else -1
    frames = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    frames.append(_square(frame, size, stereo))
                if i >= last:
                    break
    except (av.FFmpegError, OSError, IndexError) as e:
        raise DatasetError(path, f"cannot decode video: {e}") from e
    if not frames:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack(frames)


def read_droid_episode(
    ep_dir: str | os.PathLike[str],
    camera: str = "ext1",
    fps: float = 4,
    size: int = 256,
    native_fps: float = DROID_FPS,
) -> DroidEpisode:
    """Read one raw DROID episode, resampled to ``fps``, with frames of ``camera`` at ``size``²."""
    ep_dir = Path(ep_dir)
    if camera not in CAMERAS:
        raise ValueError(f"camera must be one of {CAMERAS}, got {camera!r}")
    meta = _find_metadata(ep_dir)
    serial = meta.get(f"{camera}_cam_serial")
    if not serial:
        raise DatasetError(ep_dir, f"metadata has no {camera}_cam_serial")
    task = str(meta.get("current_task") or "").strip() or "unspecified"
    states_native = _read_states(ep_dir / "trajectory.h5")
    video, stereo = _video_path(ep_dir, str(serial))

    keep = resample_indices(len(states_native), native_fps, fps)
    frames = _decode_selected(video, keep, size, stereo)
    if len(frames) < len(keep):
        # The video ended early: keep the prefix that has both state and frame.
        msg = f"{video}: {len(frames)} of {len(keep)} resampled frames present; episode truncated"
        warnings.warn(msg, stacklevel=2)
        keep = keep[: len(frames)]
    if len(keep) < 2:
        raise DatasetError(ep_dir, f"episode too short after resampling to {fps} fps ({len(keep)} steps)")
    states = canonical_state(states_native[keep])  # roll wrapped as the sim reports it (robot_pose)
    return DroidEpisode(ep_dir, task, keep, states.astype(np.float32), state_deltas(states).astype(np.float32), frames)


def find_droid_episodes(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Episode folders: each path that holds trajectory.h5, or every such folder below it."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "trajectory.h5").is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(h.parent for h in p.rglob("trajectory.h5")))
        else:
            raise FileNotFoundError(f"{p}: not a directory")
    return list(dict.fromkeys(found))


@dataclass
class DroidImportResult:
    episode_indices: list[int] = field(default_factory=list)  # new episode indices, in import order
    sources: list[Path] = field(default_factory=list)  # the folder each came from
    failed: dict[Path, str] = field(default_factory=dict)  # folder -> reason


def import_droid(
    src_dirs: Sequence[str | os.PathLike[str]],
    out_root: str | os.PathLike[str],
    camera: str = "ext1",
    fps: int = 4,
    size: int = 256,
    *,
    native_fps: float = DROID_FPS,
    camera_key: str | None = None,
    on_error: Literal["raise", "skip"] = "skip",
    progress: bool = True,
) -> DroidImportResult:
    """Import DROID episode folders (or folders containing them) into a dataset at ``out_root``.

    The camera is stored as ``observation.images.<camera_key or camera>``. Appends if ``out_root``
    exists; several importers may run in parallel on disjoint inputs into the same ``out_root``.
    With ``on_error="skip"`` a bad episode is reported in ``failed`` and the import goes on.
    """
    if size % 2:
        raise ValueError("size must be even (yuv420p video)")
    episodes = find_droid_episodes(src_dirs)
    result = DroidImportResult()
    with DatasetWriter(out_root, fps, {camera_key or camera: (size, size)}, robot_type="franka") as writer:
        for ep_dir in tqdm(episodes, desc="DROID import", unit="ep", disable=not progress):
            try:
                ep = read_droid_episode(ep_dir, camera, fps, size, native_fps)
            except DatasetError as e:
                if on_error == "raise":
                    raise
                warnings.warn(f"skipping {ep_dir}: {e}", stacklevel=2)
                result.failed[ep_dir] = str(e)
                continue
            for t in range(len(ep.states)):
                writer.add_frame(ep.states[t], ep.actions[t], {camera_key or camera: ep.frames[t]}, ep.task)
            result.episode_indices.append(writer.save_episode())
            result.sources.append(ep_dir)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import raw DROID episodes into a LeRobot v3.0 dataset.")
    parser.add_argument("src", nargs="+", help="episode folders, or folders containing them")
    parser.add_argument("--out", required=True, help="dataset root (created, or appended to)")
    parser.add_argument("--camera", default="ext1", choices=CAMERAS)
    parser.add_argument("--fps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--strict", action="store_true", help="stop at the first bad episode")
    args = parser.parse_args(argv)
    on_error = "raise" if args.strict else "skip"
    res = import_droid(args.src, args.out, args.camera, args.fps, args.size, on_error=on_error)
    print(f"imported {len(res.episode_indices)} episode(s) into {args.out}; {len(res.failed)} failed")
    for path, why in res.failed.items():
        print(f"  {path}: {why}")
    return 0 if res.episode_indices or not res.failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
