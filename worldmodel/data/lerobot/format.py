"""Dataset format: layout constants, errors, feature specs, feature JSON and arrow schema checks."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
IMAGE_PREFIX = "observation.images."

STATE_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
ACTION_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "dgripper")
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
# Our per-episode extras (file sha256s, writer info) live in the episode meta file's parquet key-value
# metadata under this key, as JSON {"<episode>": {"sha256": {"data" | "videos/<key>": hex}, "info": {...}}}:
# extra columns would make LeRobot refuse a dataset it created once we appended to it (it casts every meta
# file to the first file's columns). Older files of ours carry them as "<prefix>/sha256" and "info/<key>".
EPISODE_EXTRAS_KEY = b"vjepa_planning"

# info.json's ``video.codec`` name -> the PyAV/ffmpeg encoders that write it, the one we write it with first.
_ENCODERS = {"h264": ("libx264", "h264"), "av1": ("libsvtav1", "libaom-av1")}
_DTYPES = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
}
STAT_KEYS = ("min", "max", "mean", "std", "count")  # what a file must have for us to read its stats
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}  # LeRobot's, written as well
CAMERA_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
FILE_RE = re.compile(r"^chunk-(\d+)/file-(\d+)\.(parquet|mp4)$")


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
INDEX_SPECS: dict[str, FeatureSpec] = {
    "timestamp": FeatureSpec("float32", (1,)),
    "frame_index": FeatureSpec("int64", (1,)),
    "episode_index": FeatureSpec("int64", (1,)),
    "index": FeatureSpec("int64", (1,)),
    "task_index": FeatureSpec("int64", (1,)),
}


def codec_name(encoder: str) -> str:
    """info.json's ``video.codec`` for a PyAV encoder (``libx264`` -> ``h264``); other names pass through."""
    return next((name for name, encoders in _ENCODERS.items() if encoder in encoders), encoder)


def encoder_name(codec: str) -> str:
    """The PyAV encoder we write info.json's ``video.codec`` with (``h264`` -> ``libx264``); other names pass through."""
    return _ENCODERS.get(codec, (codec,))[0]


def video_feature_json(height: int, width: int, fps: int, codec: str) -> dict[str, Any]:
    return {
        "dtype": "video",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": height,
            "video.width": width,
            "video.codec": codec_name(codec),
            "video.pix_fmt": "yuv420p",
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    }


def features_mismatch(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str | None:
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
# Arrow conversion and validation
# --------------------------------------------------------------------------------------------------


def to_arrow(values: np.ndarray, spec: FeatureSpec) -> pa.Array:
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


def check_schema(schema: pa.Schema, specs: Mapping[str, FeatureSpec], path: Path) -> None:
    for name, spec in specs.items():
        if name not in schema.names:
            raise DatasetError(path, f"missing column {name!r}")
        _check_column_type(name, schema.field(name).type, spec, path)


def column_to_numpy(col: pa.ChunkedArray | pa.Array, name: str, spec: FeatureSpec, path: Path) -> np.ndarray:
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
