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

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
IMAGE_PREFIX = "observation.images."

STATE_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
ACTION_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "dgripper")
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")

_CODEC_NAMES = {"libx264": "h264", "h264": "h264", "libsvtav1": "av1", "libaom-av1": "av1"}
_DTYPES = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
}
_STAT_KEYS = ("min", "max", "mean", "std", "count")
_CAMERA_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_FILE_RE = re.compile(r"^chunk-(\d+)/file-(\d+)\.(parquet|mp4)$")


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or inconsistent. ``path`` names the file."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DatasetWarning(UserWarning):
    """Bad episodes were skipped, or metadata was stale and recomputed."""


# --------------------------------------------------------------------------------------------------
# Feature specs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSpec:
    """A per-frame, non-image feature: dtype in float32/float64/int32/int64/bool, 1-D shape."""

    dtype: str
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"unsupported feature dtype {self.dtype!r} (use one of {sorted(_DTYPES)})")
        shape = tuple(int(s) for s in self.shape)
        if len(shape) > 1 or any(s < 1 for s in shape):
            raise ValueError(f"feature shape must be () or (n,) with n >= 1, got {self.shape}")
        object.__setattr__(self, "shape", shape or (1,))
        if self.names is not None:
            object.__setattr__(self, "names", tuple(self.names))

    @property
    def size(self) -> int:
        return self.shape[0]

    @property
    def is_scalar(self) -> bool:
        """Stored as a plain column (not a list column) and returned as ``[T]``."""
        return self.shape == (1,)

    @property
    def arrow_type(self) -> pa.DataType:
        return _DTYPES[self.dtype]

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape), "names": list(self.names) if self.names else None}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FeatureSpec:
        names = d.get("names")
        # LeRobot sometimes writes names as {"motors": [...]}; keep the list.
        if isinstance(names, Mapping):
            names = next(iter(names.values()), None)
        return cls(str(d["dtype"]), tuple(d["shape"]), tuple(names) if isinstance(names, list) else None)


DEFAULT_FEATURES: dict[str, FeatureSpec] = {
    "observation.state": FeatureSpec("float32", (7,), STATE_NAMES),
    "action": FeatureSpec("float32", (7,), ACTION_NAMES),
}
_INDEX_SPECS: dict[str, FeatureSpec] = {
    "timestamp": FeatureSpec("float32", (1,)),
    "frame_index": FeatureSpec("int64", (1,)),
    "episode_index": FeatureSpec("int64", (1,)),
    "index": FeatureSpec("int64", (1,)),
    "task_index": FeatureSpec("int64", (1,)),
}


def _video_feature_json(height: int, width: int, fps: int, codec: str) -> dict[str, Any]:
    return {
        "dtype": "video",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": height,
            "video.width": width,
            "video.codec": _CODEC_NAMES.get(codec, codec),
            "video.pix_fmt": "yuv420p",
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    }


def _features_mismatch(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str | None:
    """Why two info.json ``features`` dicts cannot share a dataset, or None if they can."""
    if set(ours) != set(theirs):
        return f"feature names differ: {sorted(set(ours) ^ set(theirs))}"
    for name, a in ours.items():
        b = theirs[name]
        if a.get("dtype") != b.get("dtype") or list(a.get("shape", [])) != list(b.get("shape", [])):
            return f"feature {name!r}: {a.get('dtype')} {a.get('shape')} vs {b.get('dtype')} {b.get('shape')}"
        if a.get("dtype") == "video":
            ca, cb = a.get("info", {}).get("video.codec"), b.get("info", {}).get("video.codec")
            if ca != cb:
                return f"feature {name!r}: codec {ca} vs {cb}"
    return None


# --------------------------------------------------------------------------------------------------
# Atomic file helpers
# --------------------------------------------------------------------------------------------------

_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _tmp_path(root: Path, name: str) -> Path:
    """A fresh temp name under ``root/.tmp``; encodes pid and host so stale files can be cleaned."""
    return root / ".tmp" / f"tmp-{os.getpid()}-{_HOST}-{uuid.uuid4().hex[:8]}-{name}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(src: Path, dst: Path) -> None:
    """``os.replace`` into place (a module-level hook so crash tests can interrupt a commit)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def _publish(tmp: Path, dst: Path, fsync: bool) -> None:
    if fsync:
        _fsync_file(tmp)
    _replace(tmp, dst)


def _write_json_atomic(root: Path, dst: Path, obj: Any, fsync: bool) -> None:
    tmp = _tmp_path(root, dst.name)
    tmp.write_text(json.dumps(obj, indent=4) + "\n")
    _publish(tmp, dst, fsync)


def _write_parquet_atomic(root: Path, dst: Path, table: pa.Table, fsync: bool) -> None:
    tmp = _tmp_path(root, dst.name)
    pq.write_table(table, tmp)
    _publish(tmp, dst, fsync)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Exclusive dataset lock; the kernel releases it if the holder dies, even by SIGKILL."""
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _chunk_file(episode_index: int, chunks_size: int) -> tuple[int, int]:
    return episode_index // chunks_size, episode_index % chunks_size


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------

Stats = dict[str, np.ndarray]


def _array_stats(x: np.ndarray) -> Stats:
    """Stats over axis 0 of ``[T, n]`` values (population std, like numpy's default)."""
    x = x.astype(np.float64).reshape(len(x), -1)
    return {
        "min": x.min(0),
        "max": x.max(0),
        "mean": x.mean(0),
        "std": x.std(0),
        "count": np.array([len(x)], dtype=np.int64),
    }


class _ImageStats:
    """Running per-channel stats of images scaled to [0, 1]; shape (3, 1, 1) like LeRobot."""

    def __init__(self) -> None:
        self.n = 0
        self.s = np.zeros(3)
        self.s2 = np.zeros(3)
        self.lo = np.full(3, np.inf)
        self.hi = np.full(3, -np.inf)

    def add(self, img: np.ndarray) -> None:
        # Every second pixel in each direction: plenty for channel statistics, 4x cheaper.
        px = img[::2, ::2].reshape(-1, 3).astype(np.float64) / 255.0
        self.n += 1
        self.s += px.mean(0)
        self.s2 += (px * px).mean(0)
        self.lo = np.minimum(self.lo, px.min(0))
        self.hi = np.maximum(self.hi, px.max(0))

    def result(self) -> Stats:
        mean = self.s / self.n
        var = np.maximum(self.s2 / self.n - mean * mean, 0.0)
        return {
            "min": self.lo.reshape(3, 1, 1),
            "max": self.hi.reshape(3, 1, 1),
            "mean": mean.reshape(3, 1, 1),
            "std": np.sqrt(var).reshape(3, 1, 1),
            "count": np.array([self.n], dtype=np.int64),
        }


def _aggregate_stats(parts: Sequence[Stats]) -> Stats:
    """Exact pooled min/max/mean/std over episodes (each weighted by its count)."""
    n = np.array([float(p["count"][0]) for p in parts])
    total = n.sum()
    w = (n / total).reshape((-1,) + (1,) * parts[0]["mean"].ndim)
    means = np.stack([p["mean"] for p in parts])
    mean = (w * means).sum(0)
    var = (w * (np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2)).sum(0)
    return {
        "min": np.min(np.stack([p["min"] for p in parts]), 0),
        "max": np.max(np.stack([p["max"] for p in parts]), 0),
        "mean": mean,
        "std": np.sqrt(np.maximum(var, 0.0)),
        "count": np.array([int(total)], dtype=np.int64),
    }


def _stats_to_json(stats: Mapping[str, Stats]) -> dict[str, dict[str, Any]]:
    return {k: {s: np.asarray(v[s]).tolist() for s in _STAT_KEYS} for k, v in stats.items()}


def _stats_from_json(d: Mapping[str, Any]) -> dict[str, Stats]:
    # Features lacking any of our five stats (foreign stats.json) are left out.
    return {
        k: {s: np.asarray(v[s], dtype=np.int64 if s == "count" else np.float64) for s in _STAT_KEYS}
        for k, v in d.items()
        if isinstance(v, Mapping) and all(s in v for s in _STAT_KEYS)
    }


def _merge_stats(per_episode: Sequence[Mapping[str, Stats]]) -> dict[str, Stats]:
    keys = [k for k in per_episode[0] if all(k in p for p in per_episode)] if per_episode else []
    return {k: _aggregate_stats([p[k] for p in per_episode]) for k in keys}


# --------------------------------------------------------------------------------------------------
# Arrow conversion and validation
# --------------------------------------------------------------------------------------------------


def _to_arrow(values: np.ndarray, spec: FeatureSpec) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(values, dtype=spec.dtype).reshape(-1))
    return flat if spec.is_scalar else pa.FixedSizeListArray.from_arrays(flat, spec.size)


def _check_column_type(name: str, typ: pa.DataType, spec: FeatureSpec, path: Path) -> None:
    """Validate an arrow column type against its feature spec (list lengths are checked on load)."""
    if pa.types.is_fixed_size_list(typ) or pa.types.is_list(typ) or pa.types.is_large_list(typ):
        value_type = typ.value_type
        if pa.types.is_fixed_size_list(typ) and (typ.list_size,) != spec.shape:
            raise DatasetError(path, f"column {name!r} has shape ({typ.list_size},), expected {spec.shape}")
    elif spec.is_scalar:
        value_type = typ
    else:
        raise DatasetError(path, f"column {name!r} is a scalar column of {typ}, expected a list of shape {spec.shape}")
    if value_type != spec.arrow_type:
        raise DatasetError(path, f"column {name!r} has dtype {value_type}, expected {spec.dtype}")


def _check_schema(schema: pa.Schema, specs: Mapping[str, FeatureSpec], path: Path) -> None:
    for name, spec in specs.items():
        if name not in schema.names:
            raise DatasetError(path, f"missing column {name!r}")
        _check_column_type(name, schema.field(name).type, spec, path)


def _column_to_numpy(col: pa.ChunkedArray | pa.Array, name: str, spec: FeatureSpec, path: Path) -> np.ndarray:
    """``[T]`` for scalar features, ``[T, n]`` otherwise; raises on nulls or ragged lists."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    _check_column_type(name, arr.type, spec, path)
    if arr.null_count:
        raise DatasetError(path, f"column {name!r} contains {arr.null_count} null value(s)")
    if pa.types.is_fixed_size_list(arr.type) or pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        if not pa.types.is_fixed_size_list(arr.type):
            lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
            if len(lengths) and (lengths != spec.size).any():
                bad = int(lengths[lengths != spec.size][0])
                raise DatasetError(path, f"column {name!r} has rows of length {bad}, expected shape {spec.shape}")
        values = arr.flatten()
        if values.null_count:
            raise DatasetError(path, f"column {name!r} contains null values")
        out = values.to_numpy(zero_copy_only=False).reshape(len(arr), spec.size)
    else:
        out = arr.to_numpy(zero_copy_only=False)
    if spec.is_scalar:
        out = out.reshape(-1)
    return np.ascontiguousarray(out, dtype=spec.dtype)


def _read_parquet(path: Path, what: str = "parquet file", columns: Sequence[str] | None = None) -> pa.Table:
    if not path.is_file():
        raise DatasetError(path, f"{what} is missing")
    try:
        # ParquetFile.read is several times faster than read_table for many small files.
        with pq.ParquetFile(path) as pf:
            return pf.read(columns=columns)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(path, f"cannot read {what} (truncated or corrupt?): {e}") from e


# --------------------------------------------------------------------------------------------------
# Video
# --------------------------------------------------------------------------------------------------


def _codec_options(codec: str, crf: int, gop: int) -> dict[str, str]:
    opts = {"crf": str(crf), "g": str(gop)}
    if codec == "libx264":
        opts["preset"] = "veryfast"
    elif codec == "libsvtav1":
        opts["preset"] = "10"
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole config to stderr otherwise
    return opts


class _VideoEncoder:
    """Streams RGB frames into an mp4 (yuv420p) at ``path``; ``frame.pts = i`` in units of 1/fps."""

    def __init__(self, path: Path, fps: int, height: int, width: int, codec: str, options: dict[str, str]) -> None:
        self.path = path
        self.count = 0
        self._container = av.open(str(path), mode="w", format="mp4")
        try:
            self._stream = self._container.add_stream(codec, rate=fps)
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = options
        except Exception:
            self._container.close()
            raise

    def write(self, img: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = self.count
        self.count += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def finish(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # the file is discarded anyway
            pass
        self.path.unlink(missing_ok=True)


def _open_video(path: Path) -> Any:
    if not path.is_file():
        raise DatasetError(path, "video file is missing")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise DatasetError(path, f"cannot open video (truncated or corrupt?): {e}") from e
    if not container.streams.video:
        container.close()
        raise DatasetError(path, "file has no video stream")
    return container


def _probe_video(path: Path, height: int, width: int, min_frames: int, exact_frames: int | None) -> None:
    """Cheap header check: opens, right size, frame count from the mp4 sample table."""
    container = _open_video(path)
    with container:
        stream = container.streams.video[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        if (h, w) != (height, width):
            raise DatasetError(path, f"video is {h}x{w}, expected {height}x{width}")
        n = stream.frames  # 0 when the container does not say
        if n and exact_frames is not None and n != exact_frames:
            raise DatasetError(path, f"video has {n} frames but the episode has {exact_frames} data rows")
        if n and n < min_frames:
            raise DatasetError(path, f"video has {n} frames, fewer than the {min_frames} the episode needs")


def _decode_video(
    path: Path, height: int, width: int, fps: int, from_ts: float, to_ts: float, whole_file: bool
) -> np.ndarray:
    """Decode frames with timestamp in [from_ts, to_ts) (all frames if ``whole_file``) as uint8 [T,H,W,3]."""
    container = _open_video(path)
    half = 0.5 / fps  # frames are matched to the nearest 1/fps slot
    frames: list[np.ndarray] = []
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            if not whole_file and from_ts > half and stream.time_base is not None:
                container.seek(int((from_ts - half) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if not whole_file:
                    t = frame.time
                    if t is None:
                        raise DatasetError(path, "frame without timestamp in a multi-episode video")
                    if t < from_ts - half:
                        continue
                    if t >= to_ts - half:
                        break
                img = frame.to_ndarray(format="rgb24")
                if img.shape != (height, width, 3):
                    raise DatasetError(path, f"decoded frame has shape {img.shape}, expected {(height, width, 3)}")
                frames.append(img)
        except (av.FFmpegError, OSError) as e:
            raise DatasetError(path, f"video decoding failed after {len(frames)} frames: {e}") from e
    if not frames:
        return np.zeros((0, height, width, 3), np.uint8)
    return np.stack(frames)


# --------------------------------------------------------------------------------------------------
# Commit machinery shared by the writer and merge
# --------------------------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DatasetError(path, f"{what} is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"{what} is not valid JSON: {e}") from e


def _read_tasks(path: Path) -> list[str]:
    """tasks.parquet as a list indexed by task_index (accepts a `task` column or a pandas index)."""
    table = _read_parquet(path, "tasks file")
    task_col = "task" if "task" in table.column_names else "__index_level_0__"
    if task_col not in table.column_names or "task_index" not in table.column_names:
        raise DatasetError(path, "tasks file needs columns 'task' and 'task_index'")
    idx = table.column("task_index").to_pylist()
    names = table.column(task_col).to_pylist()
    tasks: list[str | None] = [None] * len(idx)
    for i, t in zip(idx, names):
        if not isinstance(i, int) or not 0 <= i < len(idx) or tasks[i] is not None or not isinstance(t, str):
            raise DatasetError(path, "task_index must enumerate 0..n-1 exactly once, with string tasks")
        tasks[i] = t
    return [t for t in tasks if t is not None]


def _tasks_table(tasks: Sequence[str]) -> pa.Table:
    return pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(list(tasks), pa.string())})


class _Committer:
    """Owns one dataset root: creation, crash recovery and the locked per-episode commit."""

    def __init__(
        self,
        root: Path,
        *,
        fps: int,
        robot_type: str,
        features_json: dict[str, Any],
        fsync: bool,
    ) -> None:
        self.root = root
        self.fps = fps
        self.robot_type = robot_type
        self.features_json = features_json
        self.fsync = fsync
        self.specs = {
            k: FeatureSpec.from_json(v) for k, v in features_json.items() if v["dtype"] != "video"
        }
        self.video_keys = [k for k, v in features_json.items() if v["dtype"] == "video"]
        self.chunks_size = CHUNKS_SIZE
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".tmp").mkdir(exist_ok=True)
        with _locked(self.root):
            self._create_or_check()
            self._cleanup()

    # ---- paths ----------------------------------------------------------------------------------

    def _info_path(self) -> Path:
        return self.root / "meta" / "info.json"

    def meta_path(self, ep: int) -> Path:
        c, f = _chunk_file(ep, self.chunks_size)
        return self.root / EPISODES_PATH.format(chunk_index=c, file_index=f)

    def data_path(self, ep: int) -> Path:
        c, f = _chunk_file(ep, self.chunks_size)
        return self.root / DATA_PATH.format(chunk_index=c, file_index=f)

    def video_path(self, key: str, ep: int) -> Path:
        c, f = _chunk_file(ep, self.chunks_size)
        return self.root / VIDEO_PATH.format(video_key=key, chunk_index=c, file_index=f)

    # ---- creation / recovery (called under the lock) --------------------------------------------

    def _new_info(self) -> dict[str, Any]:
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": 0,
            "total_frames": 0,
            "total_tasks": 0,
            "chunks_size": self.chunks_size,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 500,
            "fps": self.fps,
            "splits": {"train": "0:0"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": self.features_json,
        }

    def _create_or_check(self) -> None:
        info_path = self._info_path()
        if not info_path.exists():
            # info.json is written last: its existence means the dataset exists.
            (self.root / "meta").mkdir(exist_ok=True)
            _write_parquet_atomic(self.root, self.root / "meta" / "tasks.parquet", _tasks_table([]), self.fsync)
            _write_json_atomic(self.root, self.root / "meta" / "stats.json", {}, self.fsync)
            _write_json_atomic(self.root, info_path, self._new_info(), self.fsync)
            return
        info = _read_json(info_path, "info.json")
        problems = []
        if info.get("fps") != self.fps:
            problems.append(f"fps {info.get('fps')} != {self.fps}")
        if info.get("robot_type") != self.robot_type:
            problems.append(f"robot_type {info.get('robot_type')!r} != {self.robot_type!r}")
        why = _features_mismatch(self.features_json, info.get("features", {}))
        if why:
            problems.append(why)
        if problems:
            raise DatasetError(info_path, "existing dataset is incompatible with this writer: " + "; ".join(problems))
        self.chunks_size = int(info.get("chunks_size", CHUNKS_SIZE))

    def _scan(self) -> tuple[dict[str, Any], int, int, bool]:
        """(info, next episode index, next global row index, info_was_stale)."""
        info = _read_json(self._info_path(), "info.json")
        n = int(info["total_episodes"])
        # A crash after the commit point leaves metas beyond info's count: adopt them.
        while self.meta_path(n).exists():
            n += 1
        stale = n != int(info["total_episodes"])
        if not stale:
            return info, n, int(info["total_frames"]), False
        last = _read_parquet(self.meta_path(n - 1), "episode metadata")
        return info, n, int(last.column("dataset_to_index")[0].as_py()), True

    def _cleanup(self) -> None:
        """Delete temp files of dead processes and data/video files of uncommitted episodes."""
        for p in (self.root / ".tmp").iterdir():
            parts = p.name.split("-", 4)
            if len(parts) == 5 and parts[0] == "tmp" and parts[2] == _HOST and parts[1].isdigit():
                if not _pid_alive(int(parts[1])):
                    p.unlink(missing_ok=True)
        _, n, _, _ = self._scan()
        dirs = [self.root / "data"] + [self.root / "videos" / k for k in self.video_keys]
        for d in dirs:
            for p in d.glob("chunk-*/file-*.*"):
                m = _FILE_RE.match(p.relative_to(d).as_posix())
                if m and int(m.group(1)) * self.chunks_size + int(m.group(2)) >= n:
                    p.unlink(missing_ok=True)

    def _all_episode_stats(self) -> list[dict[str, Stats]]:
        out = []
        for path in sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
            for row in _read_parquet(path, "episode metadata").to_pylist():
                out.append(_stats_from_meta_row(row, self.features_json))
        return out

    # ---- the commit -----------------------------------------------------------------------------

    def commit(
        self,
        columns: Mapping[str, np.ndarray],
        frame_tasks: Sequence[str],
        videos: Mapping[str, Path],
        image_stats: Mapping[str, Stats],
    ) -> int:
        """Atomically add one episode. ``videos`` are temp files under ``.tmp`` and are moved in."""
        length = len(frame_tasks)
        try:
            with _locked(self.root):
                return self._commit_locked(columns, frame_tasks, videos, image_stats, length)
        finally:
            for tmp in videos.values():
                tmp.unlink(missing_ok=True)  # no-op once moved into place

    def _commit_locked(
        self,
        columns: Mapping[str, np.ndarray],
        frame_tasks: Sequence[str],
        videos: Mapping[str, Path],
        image_stats: Mapping[str, Stats],
        length: int,
    ) -> int:
        info, ep, start, stale = self._scan()

        # Tasks: append unseen ones (harmless if we crash before the commit point).
        tasks_path = self.root / "meta" / "tasks.parquet"
        tasks = _read_tasks(tasks_path)
        lookup = {t: i for i, t in enumerate(tasks)}
        episode_tasks = list(dict.fromkeys(frame_tasks))
        new = [t for t in episode_tasks if t not in lookup]
        for t in new:
            lookup[t] = len(tasks)
            tasks.append(t)
        if new:
            _write_parquet_atomic(self.root, tasks_path, _tasks_table(tasks), self.fsync)

        # Data rows with dataset-level indices.
        frame_index = np.arange(length, dtype=np.int64)
        cols: dict[str, np.ndarray] = {k: columns[k] for k in self.specs if k not in INDEX_COLUMNS}
        cols["timestamp"] = (frame_index / self.fps).astype(np.float32)
        cols["frame_index"] = frame_index
        cols["episode_index"] = np.full(length, ep, np.int64)
        cols["index"] = start + frame_index
        cols["task_index"] = np.array([lookup[t] for t in frame_tasks], np.int64)
        table = pa.table({k: _to_arrow(v, self.specs[k]) for k, v in cols.items()})
        ep_stats: dict[str, Stats] = {k: _array_stats(v) for k, v in cols.items()}
        ep_stats.update({f"{IMAGE_PREFIX}{cam}": s for cam, s in image_stats.items()})

        _write_parquet_atomic(self.root, self.data_path(ep), table, self.fsync)
        for cam, tmp in videos.items():
            _publish(tmp, self.video_path(f"{IMAGE_PREFIX}{cam}", ep), self.fsync)

        # Commit point: the episode exists once its meta file does.
        meta_path = self.meta_path(ep)
        meta = self._meta_table(ep, length, start, episode_tasks, ep_stats)
        _write_parquet_atomic(self.root, meta_path, meta, self.fsync)
        if self.fsync:
            _fsync_dir(meta_path.parent)

        # Derived metadata: stats first, info last (a stale info.json triggers recomputation).
        old = {} if stale else _stats_from_json(_read_json(self.root / "meta" / "stats.json", "stats.json"))
        if ep == 0:
            stats = dict(ep_stats)
        elif old:
            stats = _merge_stats([old, ep_stats])
        else:  # stale or missing stats.json: recompute from every episode's own stats
            stats = _merge_stats(self._all_episode_stats())
        _write_json_atomic(self.root, self.root / "meta" / "stats.json", _stats_to_json(stats), self.fsync)
        info.update(
            total_episodes=ep + 1,
            total_frames=start + length,
            total_tasks=len(tasks),
            splits={"train": f"0:{ep + 1}"},
        )
        _write_json_atomic(self.root, self._info_path(), info, self.fsync)
        return ep

    def _meta_table(self, ep: int, length: int, start: int, tasks: list[str], stats: Mapping[str, Stats]) -> pa.Table:
        c, f = _chunk_file(ep, self.chunks_size)
        row: dict[str, pa.Array] = {
            "episode_index": pa.array([ep], pa.int64()),
            "tasks": pa.array([tasks], pa.list_(pa.string())),
            "length": pa.array([length], pa.int64()),
            "data/chunk_index": pa.array([c], pa.int64()),
            "data/file_index": pa.array([f], pa.int64()),
            "dataset_from_index": pa.array([start], pa.int64()),
            "dataset_to_index": pa.array([start + length], pa.int64()),
        }
        for key in self.video_keys:
            row[f"videos/{key}/chunk_index"] = pa.array([c], pa.int64())
            row[f"videos/{key}/file_index"] = pa.array([f], pa.int64())
            row[f"videos/{key}/from_timestamp"] = pa.array([0.0], pa.float64())
            row[f"videos/{key}/to_timestamp"] = pa.array([length / self.fps], pa.float64())
        row["meta/episodes/chunk_index"] = pa.array([c], pa.int64())
        row["meta/episodes/file_index"] = pa.array([f], pa.int64())
        for key, st in stats.items():
            for s in _STAT_KEYS:
                typ = pa.int64() if s == "count" else pa.float64()
                row[f"stats/{key}/{s}"] = pa.array([np.asarray(st[s]).reshape(-1).tolist()], pa.list_(typ))
        return pa.table(row)


def _stats_from_meta_row(row: Mapping[str, Any], features_json: Mapping[str, Any]) -> dict[str, Stats]:
    """Per-episode stats stored as flat lists in ``stats/<feature>/<stat>`` columns."""
    out: dict[str, Stats] = {}
    for key, feat in features_json.items():
        if f"stats/{key}/mean" not in row:
            continue
        shape = (3, 1, 1) if feat["dtype"] == "video" else (int(np.prod(feat["shape"])),)
        try:
            out[key] = {
                s: np.asarray(row[f"stats/{key}/{s}"], dtype=np.int64 if s == "count" else np.float64).reshape(
                    (1,) if s == "count" else shape
                )
                for s in _STAT_KEYS
            }
        except (KeyError, ValueError, TypeError):
            continue  # foreign layout of per-episode stats: ignore, stats.json still stands
    return out


# --------------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------------


class DatasetWriter:
    """Buffers one episode at a time and commits it atomically (see the module docstring).

    ``features`` adds (or overrides) per-frame non-image features, e.g.
    ``{"observation.ee_pos": FeatureSpec("float32", (3,)), "next.success": FeatureSpec("bool", (1,))}``;
    ``observation.state`` and ``action`` default to the 7-d conventions. ``cameras`` maps a camera name
    to its (H, W); frames are stored as ``observation.images.<name>``. Opening an existing dataset
    appends to it (its fps, features, cameras and codec must match; see ``DatasetWriter.open``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        fps: int,
        cameras: Mapping[str, tuple[int, int]],
        features: Mapping[str, FeatureSpec | Mapping[str, Any]] | None = None,
        *,
        robot_type: str = "franka_panda_sim",
        codec: str = "libx264",
        crf: int = 20,
        gop: int | None = None,
        fsync: bool = True,
    ) -> None:
        if int(fps) != fps or fps <= 0:
            raise ValueError(f"fps must be a positive integer, got {fps}")
        self.root = Path(root)
        self.fps = int(fps)
        self.cameras = {str(k): (int(h), int(w)) for k, (h, w) in cameras.items()}
        for cam, (h, w) in self.cameras.items():
            if not _CAMERA_RE.match(cam):
                raise ValueError(f"camera name {cam!r} must match {_CAMERA_RE.pattern}")
            if h < 2 or w < 2 or h % 2 or w % 2:
                raise ValueError(f"camera {cam!r}: yuv420p needs even H and W, got {h}x{w}")
        self.features: dict[str, FeatureSpec] = dict(DEFAULT_FEATURES)
        for name, spec in (features or {}).items():
            if name in INDEX_COLUMNS or name.startswith(IMAGE_PREFIX):
                raise ValueError(f"feature name {name!r} is reserved")
            self.features[name] = spec if isinstance(spec, FeatureSpec) else FeatureSpec.from_json(spec)
        self.codec = codec
        self._codec_options = _codec_options(codec, crf, gop or max(1, 2 * self.fps))

        features_json: dict[str, Any] = {k: v.to_json() for k, v in self.features.items()}
        for cam, (h, w) in self.cameras.items():
            features_json[f"{IMAGE_PREFIX}{cam}"] = _video_feature_json(h, w, self.fps, codec)
        features_json.update({k: v.to_json() for k, v in _INDEX_SPECS.items()})
        self._committer = _Committer(
            self.root, fps=self.fps, robot_type=robot_type, features_json=features_json, fsync=fsync
        )
        self._reset()

    @classmethod
    def open(cls, root: str | os.PathLike[str], **kwargs: Any) -> DatasetWriter:
        """Append to an existing dataset, taking fps, features, cameras and codec from its info.json."""
        info = LeRobotDataset._load_info(Path(root) / "meta" / "info.json")
        feats = info["features"]
        videos = {k: v for k, v in feats.items() if v["dtype"] == "video"}
        cameras = {k[len(IMAGE_PREFIX) :]: (v["shape"][0], v["shape"][1]) for k, v in videos.items()}
        codec = next((v.get("info", {}).get("video.codec") for v in videos.values()), "h264")
        extra = {k: FeatureSpec.from_json(v) for k, v in feats.items() if k not in videos and k not in INDEX_COLUMNS}
        kwargs.setdefault("codec", {"h264": "libx264", "av1": "libsvtav1"}.get(codec, codec))
        kwargs.setdefault("robot_type", info.get("robot_type", "unknown"))
        return cls(root, int(info["fps"]), cameras, extra, **kwargs)

    # ---- per-episode buffer ---------------------------------------------------------------------

    def _reset(self) -> None:
        self._columns: dict[str, list[np.ndarray]] = {k: [] for k in self.features}
        self._tasks: list[str] = []
        self._encoders: dict[str, _VideoEncoder] = {}
        self._image_stats: dict[str, _ImageStats] = {}

    @property
    def num_buffered_frames(self) -> int:
        return len(self._tasks)

    def add_frame(
        self,
        state: np.ndarray | Sequence[float],
        action: np.ndarray | Sequence[float],
        images: Mapping[str, np.ndarray],
        task: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Buffer one frame of the current episode (``action``: from this state to the next)."""
        values = {"observation.state": state, "action": action, **(extra or {})}
        missing = set(self.features) - set(values)
        unknown = set(values) - set(self.features)
        if missing or unknown:
            raise ValueError(f"frame features: missing {sorted(missing)}, unknown {sorted(unknown)}")
        if set(images) != set(self.cameras):
            raise ValueError(f"images for cameras {sorted(images)}, expected {sorted(self.cameras)}")
        if not isinstance(task, str) or not task:
            raise ValueError("task must be a non-empty string")
        row = {}
        for name, spec in self.features.items():
            v = np.asarray(values[name])
            if v.size != spec.size:
                raise ValueError(f"feature {name!r}: got shape {v.shape}, expected {spec.shape}")
            if spec.dtype == "bool" and v.dtype != np.bool_:
                raise ValueError(f"feature {name!r}: expected bool values, got {v.dtype}")
            row[name] = v.reshape(spec.shape).astype(spec.dtype)
        for cam, img in images.items():
            img = np.asarray(img)
            if img.dtype != np.uint8 or img.shape != (*self.cameras[cam], 3):
                want = (*self.cameras[cam], 3)
                raise ValueError(f"camera {cam!r}: expected uint8 {want}, got {img.dtype} {img.shape}")

        for cam, img in images.items():
            if cam not in self._encoders:
                h, w = self.cameras[cam]
                tmp = _tmp_path(self.root, f"{cam}.mp4")
                self._encoders[cam] = _VideoEncoder(tmp, self.fps, h, w, self.codec, self._codec_options)
                self._image_stats[cam] = _ImageStats()
            self._encoders[cam].write(np.ascontiguousarray(img))
            self._image_stats[cam].add(img)
        for name, v in row.items():
            self._columns[name].append(v)
        self._tasks.append(task)

    def save_episode(self) -> int:
        """Commit the buffered episode; returns its episode_index. The buffer is cleared either way."""
        if not self._tasks:
            raise ValueError("save_episode() with no frames; call add_frame() first")
        try:
            for enc in self._encoders.values():
                enc.finish()
            columns = {k: np.stack(v) for k, v in self._columns.items()}
            videos = {cam: enc.path for cam, enc in self._encoders.items()}
            stats = {cam: s.result() for cam, s in self._image_stats.items()}
            return self._committer.commit(columns, self._tasks, videos, stats)
        finally:
            for enc in self._encoders.values():
                enc.path.unlink(missing_ok=True)
            self._reset()

    def discard_episode(self) -> None:
        """Drop the buffered frames; nothing of this episode reaches the dataset."""
        for enc in self._encoders.values():
            enc.abort()
        self._reset()

    def close(self) -> None:
        """Discard an unsaved episode (with a warning) and release temp files."""
        if self._tasks:
            msg = f"{self.root}: closing writer with {len(self._tasks)} unsaved frames; discarded"
            warnings.warn(msg, DatasetWarning, stacklevel=2)
        self.discard_episode()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EpisodeRecord:
    index: int
    length: int
    tasks: list[str]
    data_path: Path
    from_index: int
    to_index: int
    videos: dict[str, tuple[Path, float, float]]  # camera -> (path, from_ts, to_ts)
    meta_path: Path


@dataclass(frozen=True)
class SkippedEpisode:
    episode_index: int | None  # None when not even the index could be read
    reason: str


class _LazyFrames(Mapping[str, np.ndarray]):
    """Camera -> uint8 [T, H, W, 3], decoded on first access and cached."""

    def __init__(self, dataset: LeRobotDataset, episode_index: int) -> None:
        self._ds, self._ep, self._cache = dataset, episode_index, {}

    def __getitem__(self, cam: str) -> np.ndarray:
        if cam not in self._cache:
            self._cache[cam] = self._ds.episode_frames(self._ep, cam)
        return self._cache[cam]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ds.cameras)

    def __len__(self) -> int:
        return len(self._ds.cameras)


@dataclass
class Episode:
    index: int
    tasks: list[str]
    states: np.ndarray  # [T, 7] float32
    actions: np.ndarray  # [T, 7] float32; action[t] takes state t to t+1, last is zeros
    timestamps: np.ndarray  # [T] float32, frame_index / fps
    task_indices: np.ndarray  # [T] int64
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # [T] scalars, [T, n] vectors
    images: Mapping[str, np.ndarray] = field(default_factory=dict)  # camera -> uint8 [T, H, W, 3], lazy

    @property
    def length(self) -> int:
        return len(self.states)

    @property
    def task(self) -> str:
        return self.tasks[0] if self.tasks else ""


class LeRobotDataset:
    """Reader for a LeRobot v3.0 dataset (ours or one with many episodes per file).

    Opening validates ``info.json``, ``tasks.parquet`` and every episode meta; with ``verify="fast"``
    (default, ~1-3 ms per episode) also each episode's data-file schema/row count and video headers
    (size, frame count); ``verify="full"`` also loads every episode and decodes every video;
    ``verify="meta"`` checks nothing more (for very large datasets). A bad episode raises
    ``DatasetError`` (``on_error="raise"``) or is left out with a ``DatasetWarning`` listing it
    (``on_error="skip"``; see ``skipped``). Loading an episode always re-checks it fully and raises
    ``DatasetError`` naming the file on any problem. Bad global metadata (info.json, tasks.parquet)
    always raises.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        on_error: Literal["raise", "skip"] = "raise",
        verify: Literal["meta", "fast", "full"] = "fast",
    ) -> None:
        if on_error not in ("raise", "skip") or verify not in ("meta", "fast", "full"):
            raise ValueError("on_error must be 'raise' or 'skip', verify 'meta', 'fast' or 'full'")
        self.root = Path(root)
        self.info = self._load_info(self.root / "meta" / "info.json")
        self.fps: int = int(self.info["fps"])
        self.robot_type: str = str(self.info.get("robot_type", ""))
        feats = self.info["features"]
        self.features: dict[str, FeatureSpec] = {
            k: FeatureSpec.from_json(v) for k, v in feats.items() if v["dtype"] != "video"
        }
        self.cameras: dict[str, tuple[int, int]] = {
            k[len(IMAGE_PREFIX) :]: (int(v["shape"][0]), int(v["shape"][1]))
            for k, v in feats.items()
            if v["dtype"] == "video"
        }
        tasks_path = self.root / "meta" / "tasks.parquet"
        self.tasks: list[str] = _read_tasks(tasks_path) if tasks_path.exists() else []
        self.skipped: list[SkippedEpisode] = []
        self._table_cache: tuple[Path, pa.Table] | None = None

        records = self._load_records(on_error)
        # A file referenced by a single episode must hold exactly that episode's rows / frames.
        self._refs: dict[Path, int] = {}
        for r in records.values():
            for p in [r.data_path] + [v[0] for v in r.videos.values()]:
                self._refs[p] = self._refs.get(p, 0) + 1
        self._records: dict[int, _EpisodeRecord] = {}
        for ep in sorted(records):
            try:
                if verify != "meta":
                    self._verify(records[ep], full=verify == "full")
            except DatasetError as e:
                if on_error == "raise":
                    raise
                self.skipped.append(SkippedEpisode(ep, str(e)))
                continue
            self._records[ep] = records[ep]
        self._table_cache = None
        if self.skipped:
            lines = "\n".join(f"  episode {s.episode_index}: {s.reason}" for s in self.skipped)
            msg = f"{self.root}: skipped {len(self.skipped)} bad episode(s):\n{lines}"
            warnings.warn(msg, DatasetWarning, stacklevel=2)
        self._stats: dict[str, Stats] | None = None

    # ---- loading metadata -----------------------------------------------------------------------

    @staticmethod
    def _load_info(path: Path) -> dict[str, Any]:
        info = _read_json(path, "info.json")
        if not isinstance(info, dict):
            raise DatasetError(path, "info.json must hold a JSON object")
        missing = [k for k in ("codebase_version", "fps", "features", "data_path", "video_path") if k not in info]
        if missing:
            raise DatasetError(path, f"info.json lacks keys {missing}")
        if not str(info["codebase_version"]).startswith("v3."):
            raise DatasetError(path, f"codebase_version {info['codebase_version']!r} is not v3.x")
        if not isinstance(info["features"], dict):
            raise DatasetError(path, "'features' must be an object")
        for name, feat in info["features"].items():
            try:
                if feat["dtype"] == "video":
                    h, w, c = (int(x) for x in feat["shape"])
                    if c != 3:
                        raise ValueError("video features must have 3 channels")
                elif feat["dtype"] in ("image", "string"):
                    raise ValueError(f"feature dtype {feat['dtype']!r} is not supported by this reader")
                else:
                    FeatureSpec.from_json(feat)
            except (KeyError, TypeError, ValueError) as e:
                raise DatasetError(path, f"bad feature {name!r}: {e}") from e
        for name in ("observation.state", "action", *INDEX_COLUMNS):
            if name not in info["features"]:
                raise DatasetError(path, f"required feature {name!r} is not declared")
        return info

    def _load_records(self, on_error: str) -> dict[int, _EpisodeRecord]:
        records: dict[int, _EpisodeRecord] = {}
        meta_dir = self.root / "meta" / "episodes"
        files = sorted(meta_dir.glob("chunk-*/file-*.parquet")) if meta_dir.is_dir() else []
        for path in files:
            try:
                rows = self._parse_meta(path)
            except DatasetError as e:
                if on_error == "raise":
                    raise
                m = _FILE_RE.match(path.relative_to(meta_dir).as_posix())
                # our layout: one episode per meta file, so its name gives the episode index
                chunks = int(self.info.get("chunks_size", CHUNKS_SIZE))
                guess = int(m.group(1)) * chunks + int(m.group(2)) if m else None
                self.skipped.append(SkippedEpisode(guess, str(e)))
                continue
            for r in rows:
                if r.index in records:
                    raise DatasetError(path, f"episode {r.index} is also described by {records[r.index].meta_path}")
                records[r.index] = r
        return records

    def _parse_meta(self, path: Path) -> list[_EpisodeRecord]:
        try:
            with pq.ParquetFile(path) as pf:
                # Per-episode stats columns are many and only needed to recompute stats: skip them here.
                table = pf.read(columns=[c for c in pf.schema_arrow.names if not c.startswith("stats/")])
        except (pa.ArrowException, OSError) as e:
            raise DatasetError(path, f"cannot read episode metadata (truncated or corrupt?): {e}") from e
        required = ["episode_index", "length", "tasks", "data/chunk_index", "data/file_index"]
        required += ["dataset_from_index", "dataset_to_index"]
        for cam in self.cameras:
            key = f"{IMAGE_PREFIX}{cam}"
            required += [f"videos/{key}/{s}" for s in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
        missing = [c for c in required if c not in table.column_names]
        if missing:
            raise DatasetError(path, f"missing column(s) {missing}")
        out = []
        for row in table.to_pylist():
            try:
                ep, length = int(row["episode_index"]), int(row["length"])
                start, stop = int(row["dataset_from_index"]), int(row["dataset_to_index"])
                if length < 1 or stop - start != length:
                    raise ValueError(f"length {length} vs index range [{start}, {stop})")
                data = self.root / self.info["data_path"].format(
                    chunk_index=int(row["data/chunk_index"]), file_index=int(row["data/file_index"])
                )
                videos = {}
                for cam in self.cameras:
                    key = f"{IMAGE_PREFIX}{cam}"
                    vp = self.root / self.info["video_path"].format(
                        video_key=key,
                        chunk_index=int(row[f"videos/{key}/chunk_index"]),
                        file_index=int(row[f"videos/{key}/file_index"]),
                    )
                    from_ts, to_ts = row[f"videos/{key}/from_timestamp"], row[f"videos/{key}/to_timestamp"]
                    videos[cam] = (vp, float(from_ts), float(to_ts))
                tasks = [str(t) for t in (row["tasks"] or [])]
            except (TypeError, ValueError, KeyError, IndexError) as e:
                raise DatasetError(path, f"bad episode row: {e}") from e
            out.append(_EpisodeRecord(ep, length, tasks, data, start, stop, videos, path))
        return out

    def _verify(self, r: _EpisodeRecord, full: bool) -> None:
        """Header-level checks; ``full`` also loads the rows and decodes every camera."""
        if not r.data_path.is_file():
            raise DatasetError(r.data_path, "data file is missing")
        try:
            pf = pq.ParquetFile(r.data_path)
            schema, rows = pf.schema_arrow, pf.metadata.num_rows
        except (pa.ArrowException, OSError) as e:
            raise DatasetError(r.data_path, f"cannot read data file (truncated or corrupt?): {e}") from e
        _check_schema(schema, self.features, r.data_path)
        if self._refs[r.data_path] == 1 and rows != r.length:
            raise DatasetError(r.data_path, f"has {rows} rows but episode {r.index} has length {r.length}")
        for cam, (vp, from_ts, to_ts) in r.videos.items():
            h, w = self.cameras[cam]
            exact = r.length if self._refs[vp] == 1 else None
            _probe_video(vp, h, w, min_frames=round(to_ts * self.fps), exact_frames=exact)
        if full:
            self._load_columns(r)
            for cam in self.cameras:
                self.episode_frames(r.index, cam, _record=r)

    # ---- episodes -------------------------------------------------------------------------------

    @property
    def episode_indices(self) -> list[int]:
        return list(self._records)

    @property
    def num_episodes(self) -> int:
        return len(self._records)

    @property
    def num_frames(self) -> int:
        return sum(r.length for r in self._records.values())

    def __len__(self) -> int:
        return self.num_episodes

    def __iter__(self) -> Iterator[Episode]:
        return (self.episode(i) for i in self._records)

    def episode_length(self, episode_index: int) -> int:
        return self._record(episode_index).length

    def _record(self, episode_index: int) -> _EpisodeRecord:
        try:
            return self._records[episode_index]
        except KeyError:
            msg = f"episode {episode_index} is not in {self.root} (have {len(self._records)} episodes)"
            raise KeyError(msg) from None

    def _load_columns(self, r: _EpisodeRecord) -> dict[str, np.ndarray]:
        path = r.data_path
        if self._table_cache is not None and self._table_cache[0] == path:
            table = self._table_cache[1]
        else:
            table = _read_parquet(path, "data file")
            self._table_cache = (path, table)
        _check_schema(table.schema, self.features, path)
        if self._refs.get(path, 1) != 1:
            table = table.filter(pc.equal(table.column("episode_index"), r.index))
        if table.num_rows != r.length:
            raise DatasetError(path, f"has {table.num_rows} rows for episode {r.index}, metadata says {r.length}")
        cols = {k: _column_to_numpy(table.column(k), k, spec, path) for k, spec in self.features.items()}
        if (cols["episode_index"] != r.index).any():
            raise DatasetError(path, f"episode_index column does not match episode {r.index}")
        if (cols["frame_index"] != np.arange(r.length)).any():
            raise DatasetError(path, "frame_index is not 0..T-1 in order")
        return cols

    def episode(self, episode_index: int) -> Episode:
        """Load one episode's frame data; ``images`` decode lazily per camera."""
        r = self._record(episode_index)
        cols = self._load_columns(r)
        core = {"observation.state", "action", *INDEX_COLUMNS}
        return Episode(
            index=r.index,
            tasks=list(r.tasks),
            states=cols["observation.state"],
            actions=cols["action"],
            timestamps=cols["timestamp"],
            task_indices=cols["task_index"],
            extras={k: v for k, v in cols.items() if k not in core},
            images=_LazyFrames(self, r.index),
        )

    def episode_frames(self, episode_index: int, camera: str, *, _record: _EpisodeRecord | None = None) -> np.ndarray:
        """Decode one camera of one episode: uint8 [T, H, W, 3], exactly T = episode length frames."""
        r = _record or self._record(episode_index)
        if camera not in r.videos:
            raise KeyError(f"no camera {camera!r}; cameras are {sorted(self.cameras)}")
        vp, from_ts, to_ts = r.videos[camera]
        h, w = self.cameras[camera]
        frames = _decode_video(vp, h, w, self.fps, from_ts, to_ts, whole_file=self._refs.get(vp, 1) == 1)
        if len(frames) != r.length:
            raise DatasetError(vp, f"decoded {len(frames)} frames but episode {r.index} has {r.length} data rows")
        return frames

    # ---- statistics -----------------------------------------------------------------------------

    def episode_stats(self, episode_index: int) -> dict[str, Stats]:
        """The per-episode stats stored in the episode's meta row ({} if it has none)."""
        r = self._record(episode_index)
        table = _read_parquet(r.meta_path, "episode metadata")
        for row in table.to_pylist():
            if row.get("episode_index") == r.index:
                return _stats_from_meta_row(row, self.info["features"])
        return {}

    @property
    def stats(self) -> dict[str, Stats]:
        """Dataset stats; recomputed from per-episode stats if stats.json is stale or episodes were skipped."""
        if self._stats is None:
            path = self.root / "meta" / "stats.json"
            fresh = not self.skipped and self.info.get("total_episodes") == len(self._records)
            per_episode = [] if fresh else [self.episode_stats(i) for i in self._records]
            if (fresh or not all(per_episode)) and path.exists():
                self._stats = _stats_from_json(_read_json(path, "stats.json"))
            elif per_episode:
                msg = f"{self.root}: stats recomputed from the {len(per_episode)} readable episodes"
                warnings.warn(msg, DatasetWarning, stacklevel=2)
                self._stats = _merge_stats(per_episode)
            else:
                self._stats = {}
        return self._stats


# --------------------------------------------------------------------------------------------------
# Merge
# --------------------------------------------------------------------------------------------------


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
        why = _features_mismatch(first.info["features"], ds.info["features"])
        if why or ds.fps != first.fps:
            why = why or f"fps {ds.fps} != {first.fps}"
            raise DatasetError(ds.root / "meta" / "info.json", f"cannot merge with {first.root}: {why}")
    committer = _Committer(
        out, fps=first.fps, robot_type=first.robot_type, features_json=first.info["features"], fsync=fsync
    )
    user_features = [k for k in first.features if k not in INDEX_COLUMNS]
    new_indices: list[int] = []
    for ds in datasets:
        for ep in ds.episode_indices:
            r = ds._record(ep)
            cols = ds._load_columns(r)
            frame_tasks = [ds.tasks[i] for i in cols["task_index"]]
            videos: dict[str, Path] = {}
            try:
                for cam, (vp, from_ts, _) in r.videos.items():
                    if ds._refs.get(vp, 1) != 1 or from_ts != 0.0:
                        # A shared multi-episode video: cut this episode out by re-encoding it.
                        videos[cam] = _reencode(ds, ep, cam, out)
                    else:
                        videos[cam] = _tmp_path(out, f"{cam}.mp4")
                        _link_or_copy(vp, videos[cam], link)
                ep_stats = ds.episode_stats(ep)
                image_stats = {c: ep_stats[IMAGE_PREFIX + c] for c in r.videos if IMAGE_PREFIX + c in ep_stats}
                columns = {k: cols[k] for k in user_features}
                new_indices.append(committer.commit(columns, frame_tasks, videos, image_stats))
            finally:
                for tmp in videos.values():
                    tmp.unlink(missing_ok=True)
    return new_indices


def _reencode(ds: LeRobotDataset, ep: int, cam: str, out: Path) -> Path:
    h, w = ds.cameras[cam]
    codec = ds.info["features"][f"{IMAGE_PREFIX}{cam}"].get("info", {}).get("video.codec", "h264")
    codec = {"h264": "libx264", "av1": "libsvtav1"}.get(codec, codec)
    enc = _VideoEncoder(_tmp_path(out, f"{cam}.mp4"), ds.fps, h, w, codec, _codec_options(codec, 20, 2 * ds.fps))
    try:
        for img in ds.episode_frames(ep, cam):
            enc.write(img)
        enc.finish()
    except BaseException:
        enc.abort()
        raise
    return enc.path
