"""Writer: ``DatasetWriter`` and the locked, crash-safe per-episode commit it shares with merge.

The commit protocol and the parallel-writer rules are described in the package docstring
(``worldmodel/data/lerobot/__init__.py``).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from vjepa_planning.worldmodel.data.lerobot.files import (
    HOST,
    chunk_file,
    file_sha256,
    fsync_dir,
    locked,
    pid_alive,
    publish,
    read_json,
    read_parquet,
    read_tasks,
    tasks_table,
    tmp_path,
    write_json_atomic,
    write_parquet_atomic,
)
from vjepa_planning.worldmodel.data.lerobot.format import (
    CAMERA_RE,
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_FEATURES,
    EPISODE_EXTRAS_KEY,
    EPISODES_PATH,
    FILE_RE,
    IMAGE_PREFIX,
    INDEX_COLUMNS,
    INDEX_SPECS,
    VIDEO_PATH,
    DatasetError,
    DatasetWarning,
    FeatureSpec,
    encoder_name,
    features_mismatch,
    to_arrow,
    video_feature_json,
)
from vjepa_planning.worldmodel.data.lerobot.reader import load_info
from vjepa_planning.worldmodel.data.lerobot.stats import (
    ImageStats,
    Stats,
    array_stats,
    merge_stats,
    stat_names,
    stats_from_json,
    stats_from_meta_row,
    stats_to_json,
)
from vjepa_planning.worldmodel.data.lerobot.video import VideoEncoder, codec_options

# --------------------------------------------------------------------------------------------------
# Commit machinery shared by the writer and merge
# --------------------------------------------------------------------------------------------------


class Committer:
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
        with locked(self.root):
            self._create_or_check()
            self._cleanup()

    # ---- paths ----------------------------------------------------------------------------------

    def _info_path(self) -> Path:
        return self.root / "meta" / "info.json"

    def meta_path(self, ep: int) -> Path:
        c, f = chunk_file(ep, self.chunks_size)
        return self.root / EPISODES_PATH.format(chunk_index=c, file_index=f)

    def data_path(self, ep: int) -> Path:
        c, f = chunk_file(ep, self.chunks_size)
        return self.root / DATA_PATH.format(chunk_index=c, file_index=f)

    def video_path(self, key: str, ep: int) -> Path:
        c, f = chunk_file(ep, self.chunks_size)
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
            write_parquet_atomic(self.root, self.root / "meta" / "tasks.parquet", tasks_table([]), self.fsync)
            write_json_atomic(self.root, self.root / "meta" / "stats.json", {}, self.fsync)
            write_json_atomic(self.root, info_path, self._new_info(), self.fsync)
            return
        info = read_json(info_path, "info.json")
        problems = []
        if info.get("fps") != self.fps:
            problems.append(f"fps {info.get('fps')} != {self.fps}")
        if info.get("robot_type") != self.robot_type:
            problems.append(f"robot_type {info.get('robot_type')!r} != {self.robot_type!r}")
        why = features_mismatch(self.features_json, info.get("features", {}))
        if why:
            problems.append(why)
        if problems:
            raise DatasetError(info_path, "existing dataset is incompatible with this writer: " + "; ".join(problems))
        self.chunks_size = int(info.get("chunks_size", CHUNKS_SIZE))

    def _scan(self) -> tuple[dict[str, Any], int, int, bool]:
        """(info, next episode index, next global row index, info_was_stale)."""
        info = read_json(self._info_path(), "info.json")
        n = int(info["total_episodes"])
        # A crash after the commit point leaves metas beyond info's count: adopt them.
        while self.meta_path(n).exists():
            n += 1
        stale = n != int(info["total_episodes"])
        if not stale:
            return info, n, int(info["total_frames"]), False
        last = read_parquet(self.meta_path(n - 1), "episode metadata")
        return info, n, int(last.column("dataset_to_index")[0].as_py()), True

    def _cleanup(self) -> None:
        """Delete temp files of dead processes and data/video files of uncommitted episodes."""
        for p in (self.root / ".tmp").iterdir():
            parts = p.name.split("-", 4)
            if len(parts) == 5 and parts[0] == "tmp" and parts[2] == HOST and parts[1].isdigit():
                if not pid_alive(int(parts[1])):
                    p.unlink(missing_ok=True)
        _, n, _, _ = self._scan()
        dirs = [self.root / "data"] + [self.root / "videos" / k for k in self.video_keys]
        for d in dirs:
            for p in d.glob("chunk-*/file-*.*"):
                m = FILE_RE.match(p.relative_to(d).as_posix())
                if m and int(m.group(1)) * self.chunks_size + int(m.group(2)) >= n:
                    p.unlink(missing_ok=True)

    def _all_episode_stats(self) -> list[dict[str, Stats]]:
        out = []
        for path in sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
            for row in read_parquet(path, "episode metadata").to_pylist():
                out.append(stats_from_meta_row(row, self.features_json))
        return out

    # ---- the commit -----------------------------------------------------------------------------

    def commit(
        self,
        columns: Mapping[str, np.ndarray],
        frame_tasks: Sequence[str],
        videos: Mapping[str, Path],
        image_stats: Mapping[str, Stats],
        info: Mapping[str, int | float | str] | None = None,
    ) -> int:
        """Atomically add one episode (`info`: scalars kept with its meta row, see EPISODE_EXTRAS_KEY). ``videos`` are temp files under ``.tmp`` and are moved in."""
        length = len(frame_tasks)
        try:
            with locked(self.root):
                return self._commit_locked(columns, frame_tasks, videos, image_stats, length, info or {})
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
        episode_info: Mapping[str, int | float | str],
    ) -> int:
        info, ep, start, stale = self._scan()

        # Tasks: append unseen ones (harmless if we crash before the commit point).
        tasks_path = self.root / "meta" / "tasks.parquet"
        tasks = read_tasks(tasks_path)
        lookup = {t: i for i, t in enumerate(tasks)}
        episode_tasks = list(dict.fromkeys(frame_tasks))
        new = [t for t in episode_tasks if t not in lookup]
        for t in new:
            lookup[t] = len(tasks)
            tasks.append(t)
        if new:
            write_parquet_atomic(self.root, tasks_path, tasks_table(tasks), self.fsync)

        # Data rows with dataset-level indices.
        frame_index = np.arange(length, dtype=np.int64)
        cols: dict[str, np.ndarray] = {k: columns[k] for k in self.specs if k not in INDEX_COLUMNS}
        cols["timestamp"] = (frame_index / self.fps).astype(np.float32)
        cols["frame_index"] = frame_index
        cols["episode_index"] = np.full(length, ep, np.int64)
        cols["index"] = start + frame_index
        cols["task_index"] = np.array([lookup[t] for t in frame_tasks], np.int64)
        table = pa.table({k: to_arrow(v, self.specs[k]) for k, v in cols.items()})
        ep_stats: dict[str, Stats] = {k: array_stats(v) for k, v in cols.items()}
        ep_stats.update({f"{IMAGE_PREFIX}{cam}": s for cam, s in image_stats.items()})

        write_parquet_atomic(self.root, self.data_path(ep), table, self.fsync)
        for cam, tmp in videos.items():
            publish(tmp, self.video_path(f"{IMAGE_PREFIX}{cam}", ep), self.fsync)
        # Content hashes of the files as published: the reader checks them, so corruption is caught.
        hashes = {"data": file_sha256(self.data_path(ep))}
        hashes.update({f"videos/{IMAGE_PREFIX}{cam}": file_sha256(self.video_path(f"{IMAGE_PREFIX}{cam}", ep)) for cam in videos})

        # Commit point: the episode exists once its meta file does.
        meta_path = self.meta_path(ep)
        meta = self._meta_table(ep, length, start, episode_tasks, ep_stats, episode_info, hashes)
        write_parquet_atomic(self.root, meta_path, meta, self.fsync)
        if self.fsync:
            fsync_dir(meta_path.parent)

        # Derived metadata: stats first, info last (a stale info.json triggers recomputation).
        old = {} if stale else stats_from_json(read_json(self.root / "meta" / "stats.json", "stats.json"))
        if ep == 0:
            stats = dict(ep_stats)
        elif old:
            stats = merge_stats([old, ep_stats])
        else:  # stale or missing stats.json: recompute from every episode's own stats
            stats = merge_stats(self._all_episode_stats())
        write_json_atomic(self.root, self.root / "meta" / "stats.json", stats_to_json(stats), self.fsync)
        info.update(
            total_episodes=ep + 1,
            total_frames=start + length,
            total_tasks=len(tasks),
            splits={"train": f"0:{ep + 1}"},
        )
        write_json_atomic(self.root, self._info_path(), info, self.fsync)
        return ep

    def _meta_table(self, ep: int, length: int, start: int, tasks: list[str], stats: Mapping[str, Stats],
                    info: Mapping[str, int | float | str] | None = None, hashes: Mapping[str, str] | None = None) -> pa.Table:
        c, f = chunk_file(ep, self.chunks_size)
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
        for key, value in (info or {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError(f"episode info {key!r} must be an int, float or str, got {value!r}")
        row["meta/episodes/chunk_index"] = pa.array([c], pa.int64())
        row["meta/episodes/file_index"] = pa.array([f], pa.int64())
        for key, st in stats.items():  # in each stat's own shape: (n,) lists, or (3, 1, 1) nested for cameras
            for s in stat_names(st):
                value = np.asarray(st[s])
                typ = pa.int64() if s == "count" else pa.float64()
                for _ in range(value.ndim - 1):
                    typ = pa.list_(typ)
                row[f"stats/{key}/{s}"] = pa.array([value.tolist()], pa.list_(typ))
        # "data" and "videos/<key>": the sha256 of that file; LeRobot's columns only, the extras as metadata
        extras = {str(ep): {"sha256": dict(hashes or {}), "info": dict(info or {})}}
        return pa.table(row).replace_schema_metadata({EPISODE_EXTRAS_KEY: json.dumps(extras)})


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
            if not CAMERA_RE.match(cam):
                raise ValueError(f"camera name {cam!r} must match {CAMERA_RE.pattern}")
            if h < 2 or w < 2 or h % 2 or w % 2:
                raise ValueError(f"camera {cam!r}: yuv420p needs even H and W, got {h}x{w}")
        self.features: dict[str, FeatureSpec] = dict(DEFAULT_FEATURES)
        for name, spec in (features or {}).items():
            if name in INDEX_COLUMNS or name.startswith(IMAGE_PREFIX):
                raise ValueError(f"feature name {name!r} is reserved")
            self.features[name] = spec if isinstance(spec, FeatureSpec) else FeatureSpec.from_json(spec)
        self.codec = codec
        self._codec_options = codec_options(codec, crf, gop or max(1, 2 * self.fps))

        features_json: dict[str, Any] = {k: v.to_json() for k, v in self.features.items()}
        for cam, (h, w) in self.cameras.items():
            features_json[f"{IMAGE_PREFIX}{cam}"] = video_feature_json(h, w, self.fps, codec)
        features_json.update({k: v.to_json() for k, v in INDEX_SPECS.items()})
        self._committer = Committer(
            self.root, fps=self.fps, robot_type=robot_type, features_json=features_json, fsync=fsync
        )
        self._reset()

    @classmethod
    def open(cls, root: str | os.PathLike[str], **kwargs: Any) -> DatasetWriter:
        """Append to an existing dataset, taking fps, features, cameras and codec from its info.json."""
        info = load_info(Path(root) / "meta" / "info.json")
        feats = info["features"]
        videos = {k: v for k, v in feats.items() if v["dtype"] == "video"}
        cameras = {k[len(IMAGE_PREFIX) :]: (v["shape"][0], v["shape"][1]) for k, v in videos.items()}
        codec = next((v.get("info", {}).get("video.codec") for v in videos.values()), "h264")
        extra = {k: FeatureSpec.from_json(v) for k, v in feats.items() if k not in videos and k not in INDEX_COLUMNS}
        kwargs.setdefault("codec", encoder_name(codec))
        kwargs.setdefault("robot_type", info.get("robot_type", "unknown"))
        return cls(root, int(info["fps"]), cameras, extra, **kwargs)

    # ---- per-episode buffer ---------------------------------------------------------------------

    def _reset(self) -> None:
        self._columns: dict[str, list[np.ndarray]] = {k: [] for k in self.features}
        self._tasks: list[str] = []
        self._encoders: dict[str, VideoEncoder] = {}
        self._image_stats: dict[str, ImageStats] = {}

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
                tmp = tmp_path(self.root, f"{cam}.mp4")
                self._encoders[cam] = VideoEncoder(tmp, self.fps, h, w, self.codec, self._codec_options)
                self._image_stats[cam] = ImageStats()
            self._encoders[cam].write(np.ascontiguousarray(img))
            self._image_stats[cam].add(img)
        for name, v in row.items():
            self._columns[name].append(v)
        self._tasks.append(task)

    def save_episode(self, info: Mapping[str, int | float | str] | None = None) -> int:
        """Commit the buffered episode, with `info` (e.g. the seed that reproduces it) in its metadata;
        returns its episode_index. The buffer is cleared either way."""
        if not self._tasks:
            raise ValueError("save_episode() with no frames; call add_frame() first")
        try:
            for enc in self._encoders.values():
                enc.finish()
            columns = {k: np.stack(v) for k, v in self._columns.items()}
            videos = {cam: enc.path for cam, enc in self._encoders.items()}
            stats = {cam: s.result() for cam, s in self._image_stats.items()}
            return self._committer.commit(columns, self._tasks, videos, stats, info)
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
