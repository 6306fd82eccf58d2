"""Trajectory dataset in the LeRobot v3.0 layout, written and read with pyarrow + PyAV only.

Conventions (see /work/shared/DESIGN.md)
-----------------------------------------
* ``observation.state[t]`` = ``[x, y, z, roll, pitch, yaw, gripper]``: end-effector position (m, base
  frame), orientation as extrinsic Euler "xyz" (rad), gripper in [0, 1] with 1 = closed.
* ``action[t]`` is the action taken from state t to state t+1:
  ``[Δxyz, Euler-xyz(R_{t+1} R_tᵀ), Δgripper]``. The last frame of an episode has no successor, so its
  action is all zeros (``state_deltas`` in ``droid_import`` computes actions this way from states).
* ``timestamp[t] = frame_index / fps``; ``index`` is the frame's global row number in the dataset.
* Images are uint8 RGB ``[H, W, 3]``; each camera is stored as H.264 (or AV1) yuv420p video.

Layout
------
::

    meta/info.json                       codebase_version "v3.0", fps, features, path templates, totals
    meta/stats.json                      min/max/mean/std/count per numeric feature (+ per-channel images)
    meta/tasks.parquet                   task_index, task
    meta/episodes/chunk-CCC/file-FFF.parquet   one row per episode (+ per-episode stats columns)
    data/chunk-CCC/file-FFF.parquet      frame rows
    videos/observation.images.<cam>/chunk-CCC/file-FFF.mp4

This writer puts exactly one episode in each data/video/meta file, with chunk = episode // chunks_size
and file = episode % chunks_size. That is valid v3.0 (the episode metadata names chunk/file, row range and
video time window). The reader also accepts v3.0 datasets with many episodes per file.

Commit protocol (an episode is complete on disk or absent)
----------------------------------------------------------
1. While frames arrive, each camera is encoded straight into ``.tmp/`` (same file system as the dataset).
2. ``save_episode`` takes an exclusive ``fcntl.flock`` on ``.lock`` and, under it: finds the next episode
   index and global row offset (``info.json`` totals, then probing for episode metas a crashed commit
   left beyond them), appends new tasks to ``tasks.parquet``, writes the data parquet, moves the videos
   into place, and finally writes the episode-meta parquet: **that rename is the commit point**.
   ``stats.json`` and then ``info.json`` are rewritten afterwards.
3. Every file is written under a temporary name, fsynced and ``os.replace``d, so a reader never sees a
   partial file. The reader trusts only episodes that have a meta file; data/video files without one
   (a crash mid-commit) are ignored, overwritten by the next commit and deleted when a writer opens the
   dataset. If ``info.json``/``stats.json`` lag behind the metas (crash after the commit point), the
   next commit and the reader recompute them from the per-episode metas.

Parallel writers
----------------
Several processes may write into the same root at once (one ``DatasetWriter`` each): the expensive part,
video encoding, runs outside the lock, and episode/row/task indices are assigned under the lock at
commit time, so episode indices are dense and global ``index`` ranges are contiguous. ``flock`` needs a
local file system (or one with working flock). Alternatively each worker writes its own dataset and
``merge_datasets(parts, out)`` renumbers and combines them (hard-linking videos where possible).
"""

from __future__ import annotations

from vjepa_planning.worldmodel.data.lerobot.format import (
    ACTION_NAMES,
    STATE_NAMES,
    DatasetError,
    DatasetWarning,
    FeatureSpec,
)
from vjepa_planning.worldmodel.data.lerobot.merge import merge_datasets
from vjepa_planning.worldmodel.data.lerobot.reader import Episode, LeRobotDataset, SkippedEpisode
from vjepa_planning.worldmodel.data.lerobot.writer import DatasetWriter

__all__ = [
    "ACTION_NAMES",
    "STATE_NAMES",
    "DatasetError",
    "DatasetWarning",
    "DatasetWriter",
    "Episode",
    "FeatureSpec",
    "LeRobotDataset",
    "SkippedEpisode",
    "merge_datasets",
]
