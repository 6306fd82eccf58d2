"""Merge: combine datasets into one, renumbering episodes, rows and tasks (see ``merge_datasets``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from vjepa_planning.worldmodel.data.lerobot.files import tmp_path
from vjepa_planning.worldmodel.data.lerobot.format import IMAGE_PREFIX, DatasetError, encoder_name, features_mismatch
from vjepa_planning.worldmodel.data.lerobot.reader import LeRobotDataset
from vjepa_planning.worldmodel.data.lerobot.video import VideoEncoder, codec_options
from vjepa_planning.worldmodel.data.lerobot.writer import Committer


def _link_or_copy(src: Path, dst: Path, link: bool) -> None:
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # other file system, or links unsupported: copy
    shutil.copyfile(src, dst)


def merge_datasets(
    parts: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    link: bool = True,
    on_error: Literal["raise", "skip"] = "raise",
    fsync: bool = True,
) -> list[int]:
    """Append every readable episode of ``parts`` (in order) to ``out``, renumbering episodes, rows and
    tasks. Videos are hard-linked when possible (``link``), else copied. ``out`` may be new or an
    existing compatible dataset; each episode is committed atomically, so an interrupted merge leaves
    ``out`` consistent. Returns the new episode indices in order.
    """
    out = Path(out)
    if not parts:
        raise ValueError("merge_datasets needs at least one part")
    datasets = [LeRobotDataset(p, on_error=on_error) for p in parts]
    first = datasets[0]
    for ds in datasets[1:]:
        why = features_mismatch(first.info["features"], ds.info["features"])
        if why or ds.fps != first.fps:
            why = why or f"fps {ds.fps} != {first.fps}"
            raise DatasetError(ds.root / "meta" / "info.json", f"cannot merge with {first.root}: {why}")
    committer = Committer(
        out, fps=first.fps, robot_type=first.robot_type, features_json=first.info["features"], fsync=fsync
    )
    new_indices: list[int] = []
    for ds in datasets:
        for ep in ds.episode_indices:
            episode = ds.episode(ep)
            frame_tasks = [ds.tasks[i] for i in episode.task_indices]
            videos: dict[str, Path] = {}
            try:
                for cam in ds.cameras:
                    vp = ds.episode_video_file(ep, cam)  # content-checked: a corrupt file never gets a fresh hash
                    if vp is None:  # a shared multi-episode video: cut this episode out by re-encoding it
                        videos[cam] = _reencode(ds, ep, cam, out)
                    else:
                        videos[cam] = tmp_path(out, f"{cam}.mp4")
                        _link_or_copy(vp, videos[cam], link)
                ep_stats = ds.episode_stats(ep)
                image_stats = {c: ep_stats[IMAGE_PREFIX + c] for c in ds.cameras if IMAGE_PREFIX + c in ep_stats}
                columns = {"observation.state": episode.states, "action": episode.actions, **episode.extras}
                new_indices.append(committer.commit(columns, frame_tasks, videos, image_stats, info=ds.episode_info(ep)))
            finally:
                for tmp in videos.values():
                    tmp.unlink(missing_ok=True)
    return new_indices


def _reencode(ds: LeRobotDataset, ep: int, cam: str, out: Path) -> Path:
    h, w = ds.cameras[cam]
    codec = encoder_name(ds.info["features"][f"{IMAGE_PREFIX}{cam}"].get("info", {}).get("video.codec", "h264"))
    enc = VideoEncoder(tmp_path(out, f"{cam}.mp4"), ds.fps, h, w, codec, codec_options(codec, 20, 2 * ds.fps))
    try:
        for img in ds.episode_frames(ep, cam):
            enc.write(img)
        enc.finish()
    except BaseException:
        enc.abort()
        raise
    return enc.path
