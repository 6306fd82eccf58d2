"""Reader: ``LeRobotDataset``, its ``Episode`` objects and the per-episode records behind them."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vjepa_planning.worldmodel.data.lerobot.files import file_sha256, read_json, read_parquet, read_tasks
from vjepa_planning.worldmodel.data.lerobot.format import (
    CHUNKS_SIZE,
    EPISODE_EXTRAS_KEY,
    FILE_RE,
    IMAGE_PREFIX,
    INDEX_COLUMNS,
    DatasetError,
    DatasetWarning,
    FeatureSpec,
    check_schema,
    column_to_numpy,
)
from vjepa_planning.worldmodel.data.lerobot.stats import Stats, merge_stats, stats_from_json, stats_from_meta_row
from vjepa_planning.worldmodel.data.lerobot.video import decode_video, probe_video


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
    info: dict[str, Any] = field(default_factory=dict)  # the writer's ``info/<key>`` columns
    sha256: dict[Path, str] = field(default_factory=dict)  # file -> its content hash recorded at commit (our writer)


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


def load_info(path: Path) -> dict[str, Any]:
    """Read and validate info.json (shared by the reader and ``DatasetWriter.open``); raises DatasetError."""
    info = read_json(path, "info.json")
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


class LeRobotDataset:
    """Reader for a LeRobot v3.0 dataset (ours or one with many episodes per file).

    Opening validates ``info.json``, ``tasks.parquet`` and every episode meta; with ``verify="fast"``
    (default, ~1-3 ms per episode) also each episode's data-file schema/row count, video headers (size,
    frame count) and the sha256 of its data and video files where the writer recorded them (ours does, at
    commit; a dataset written elsewhere has none, and its files are then checked only as above);
    ``verify="full"`` also loads every episode and decodes every video; ``verify="meta"`` checks none of
    this, content hashes included (for very large datasets). A bad episode raises
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
        self.info = load_info(self.root / "meta" / "info.json")
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
        self.tasks: list[str] = read_tasks(tasks_path) if tasks_path.exists() else []
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
                m = FILE_RE.match(path.relative_to(meta_dir).as_posix())
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
            extras = json.loads((pf.schema_arrow.metadata or {}).get(EPISODE_EXTRAS_KEY, b"{}"))
        except (pa.ArrowException, OSError, ValueError) as e:
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
            extra = extras.get(str(ep), {}) if isinstance(extras, dict) else {}
            info = {k[len("info/"):]: v for k, v in row.items() if k.startswith("info/") and v is not None}  # older files
            info.update(extra.get("info", {}))
            files = {"data": data, **{f"videos/{IMAGE_PREFIX}{cam}": vp for cam, (vp, _, _) in videos.items()}}
            digests = {k: row.get(f"{k}/sha256") for k in files} | extra.get("sha256", {})
            sha256 = {p: str(digests[k]) for k, p in files.items() if digests.get(k)}
            out.append(_EpisodeRecord(ep, length, tasks, data, start, stop, videos, path, info, sha256))
        return out

    def _verify(self, r: _EpisodeRecord, full: bool) -> None:
        """Header-level checks and the files' content hashes (where the writer recorded them); ``full`` also
        loads the rows and decodes every camera."""
        if not r.data_path.is_file():
            raise DatasetError(r.data_path, "data file is missing")
        try:
            pf = pq.ParquetFile(r.data_path)
            schema, rows = pf.schema_arrow, pf.metadata.num_rows
        except (pa.ArrowException, OSError) as e:
            raise DatasetError(r.data_path, f"cannot read data file (truncated or corrupt?): {e}") from e
        check_schema(schema, self.features, r.data_path)
        if self._refs[r.data_path] == 1 and rows != r.length:
            raise DatasetError(r.data_path, f"has {rows} rows but episode {r.index} has length {r.length}")
        for cam, (vp, from_ts, to_ts) in r.videos.items():
            h, w = self.cameras[cam]
            exact = r.length if self._refs[vp] == 1 else None
            probe_video(vp, h, w, min_frames=round(to_ts * self.fps), exact_frames=exact)
        if full:  # loading checks each file's content hash too, after its structure
            self._load_columns(r)
            for cam in self.cameras:
                self.episode_frames(r.index, cam, _record=r)
        else:
            for path in r.sha256:  # last: a malformed file is named for what is wrong with it first
                self._check_content(r, path)

    @staticmethod
    def _check_content(r: _EpisodeRecord, path: Path) -> None:
        """The file's bytes against the sha256 recorded at commit (a file without one is not checked)."""
        digest = r.sha256.get(path)
        if digest is not None and path.is_file() and file_sha256(path) != digest:
            raise DatasetError(path, f"content does not match the sha256 recorded when episode {r.index} was committed "
                                     "(corrupted or changed since)")

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

    def episode_info(self, episode_index: int) -> dict[str, Any]:
        """What the writer recorded about the episode (``save_episode(info=...)``, e.g. its seed); {} if nothing."""
        return dict(self._record(episode_index).info)

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
            table = read_parquet(path, "data file")
            self._table_cache = (path, table)
        check_schema(table.schema, self.features, path)
        if self._refs.get(path, 1) != 1:
            table = table.filter(pc.equal(table.column("episode_index"), r.index))
        if table.num_rows != r.length:
            raise DatasetError(path, f"has {table.num_rows} rows for episode {r.index}, metadata says {r.length}")
        cols = {k: column_to_numpy(table.column(k), k, spec, path) for k, spec in self.features.items()}
        if (cols["episode_index"] != r.index).any():
            raise DatasetError(path, f"episode_index column does not match episode {r.index}")
        if (cols["frame_index"] != np.arange(r.length)).any():
            raise DatasetError(path, "frame_index is not 0..T-1 in order")
        self._check_content(r, path)
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
        frames = decode_video(vp, h, w, self.fps, from_ts, to_ts, whole_file=self._refs.get(vp, 1) == 1)
        if len(frames) != r.length:
            raise DatasetError(vp, f"decoded {len(frames)} frames but episode {r.index} has {r.length} data rows")
        self._check_content(r, vp)
        return frames

    def episode_video_file(self, episode_index: int, camera: str) -> Path | None:
        """The mp4 holding exactly this episode's ``camera`` frames, content-checked, so it can be linked or
        copied as is; None when the file is shared with other episodes (``episode_frames`` cuts those out)."""
        r = self._record(episode_index)
        vp, from_ts, _ = r.videos[camera]
        if self._refs.get(vp, 1) != 1 or from_ts != 0.0:
            return None
        self._check_content(r, vp)  # never hand on a corrupt file
        return vp

    # ---- statistics -----------------------------------------------------------------------------

    def episode_stats(self, episode_index: int) -> dict[str, Stats]:
        """The per-episode stats stored in the episode's meta row ({} if it has none)."""
        r = self._record(episode_index)
        table = read_parquet(r.meta_path, "episode metadata")
        for row in table.to_pylist():
            if row.get("episode_index") == r.index:
                return stats_from_meta_row(row, self.info["features"])
        return {}

    @property
    def stats(self) -> dict[str, Stats]:
        """Dataset stats; recomputed from per-episode stats if stats.json is stale or episodes were skipped."""
        if self._stats is None:
            path = self.root / "meta" / "stats.json"
            fresh = not self.skipped and self.info.get("total_episodes") == len(self._records)
            per_episode = [] if fresh else [self.episode_stats(i) for i in self._records]
            if (fresh or not all(per_episode)) and path.exists():
                self._stats = stats_from_json(read_json(path, "stats.json"))
            elif per_episode:
                msg = f"{self.root}: stats recomputed from the {len(per_episode)} readable episodes"
                warnings.warn(msg, DatasetWarning, stacklevel=2)
                self._stats = merge_stats(per_episode)
            else:
                self._stats = {}
        return self._stats
