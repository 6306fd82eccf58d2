"""Frozen-encoder features of a dataset's frames, computed once and cached beside the data.

Layout::

    DIR/.feature_cache/<key>/key.json                  what the key hashes (human-readable)
    DIR/.feature_cache/<key>/episode_000123.npy        float16 [T, N, D] for episode 123

Each frame is encoded on its own (repeated to fill one tubelet, as V-JEPA 2-AC does), exactly as
``world_model.VJEPAFrameEncoder`` encodes frames when planning, and stored layer-normed (no affine):
what the predictor consumes. The ``key`` is a hash of the encoder's weights and architecture, the
preprocessing (input size, crop, interpolation, mean / std, tubelet fill, layer norm), the camera
and the storage dtype, so changing any of them selects a new folder: stale features are never read.
Files are written under a temporary name and renamed into place (a crash leaves no partial file),
so several processes (DDP ranks) may fill the same cache concurrently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from vjepa_planning.worldmodel.checkpoints import module_sha256
from vjepa_planning.worldmodel.preprocess import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)

CACHE_DIRNAME = ".feature_cache"
CACHE_VERSION = 1  # bump when the meaning of a cached file changes


def preprocessing_spec(frame_encoder) -> dict:
    """What a ``VJEPAFrameEncoder`` does to a frame before and after its ViT."""
    enc = frame_encoder.encoder
    return {
        "img_size": int(frame_encoder.img_size),
        "crop": "centre-square",
        "interpolation": str(frame_encoder.interpolation),
        "mean": [float(x) for x in frame_encoder.mean],
        "std": [float(x) for x in frame_encoder.std],
        "tubelet_fill": f"repeat x{enc.tubelet_size}",
        "layer_norm": bool(frame_encoder.normalize),
    }


def cache_key_spec(frame_encoder, camera: str, dtype: str = "float16") -> dict:
    enc = frame_encoder.encoder
    return {
        "version": CACHE_VERSION,
        "encoder_arch": getattr(enc, "arch", type(enc).__name__),
        "encoder_weights_sha256": module_sha256(enc),
        "preprocessing": preprocessing_spec(frame_encoder),
        "compute_dtype": str(frame_encoder.dtype),
        "camera": camera,
        "dtype": dtype,
    }


def cache_key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class FeatureCache:
    """Per-episode features of one dataset for one (encoder, preprocessing, camera)."""

    def __init__(self, data_root: str | os.PathLike, spec: dict):
        self.spec = spec
        self.key = cache_key(spec)
        self.dir = Path(data_root) / CACHE_DIRNAME / self.key
        self.dtype = np.dtype(spec["dtype"])

    @classmethod
    def for_encoder(cls, data_root, frame_encoder, camera: str, dtype: str = "float16") -> FeatureCache:
        return cls(data_root, cache_key_spec(frame_encoder, camera, dtype))

    def path(self, episode_index: int) -> Path:
        return self.dir / f"episode_{episode_index:06d}.npy"

    def has(self, episode_index: int, length: int | None = None) -> bool:
        p = self.path(episode_index)
        if not p.is_file():
            return False
        if length is None:
            return True
        try:
            return np.load(p, mmap_mode="r").shape[0] == length
        except (ValueError, OSError):
            return False

    def load(self, episode_index: int) -> np.ndarray:
        """float16 [T, N, D] (memory-mapped)."""
        return np.load(self.path(episode_index), mmap_mode="r")

    def save(self, episode_index: int, features: np.ndarray) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        key_file = self.dir / "key.json"
        if not key_file.exists():
            tmp = key_file.with_name(f".key.json.{uuid.uuid4().hex}.tmp")
            tmp.write_text(json.dumps({"key": self.key, **self.spec}, indent=1))
            os.replace(tmp, key_file)
        _atomic_save_npy(self.path(episode_index), np.ascontiguousarray(features.astype(self.dtype)))

    def fill(
        self,
        episodes: Iterable[int],
        lengths: Callable[[int], int],
        frames: Callable[[int], np.ndarray],
        encode: Callable[[np.ndarray], torch.Tensor],
        progress: bool = True,
    ) -> int:
        """Encode every episode not cached yet. ``frames(ep)`` -> uint8 [T, H, W, 3]; ``encode`` ->
        [T, N, D]. Returns the number of episodes encoded."""
        from tqdm import tqdm

        todo = [ep for ep in episodes if not self.has(ep, lengths(ep))]
        for ep in tqdm(todo, desc=f"encoding frames -> {self.dir}", unit="ep", disable=not progress or not todo):
            z = encode(frames(ep))  # [T, N, D]
            if z.shape[0] != lengths(ep):
                raise RuntimeError(f"episode {ep}: encoder returned {z.shape[0]} frames for {lengths(ep)}")
            self.save(ep, z.float().cpu().numpy())
        return len(todo)


def build_feature_cache(
    dataset,
    frame_encoder,
    camera: str,
    episodes: Sequence[int] | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
) -> FeatureCache:
    """The dataset's cache for ``frame_encoder`` (a ``VJEPAFrameEncoder``), filled for ``episodes``
    (default all). With several ranks each encodes its share (episode k goes to rank k % world);
    the caller synchronises (barrier) before reading the others' files."""
    from vjepa_planning.worldmodel.data.lerobot import DatasetError

    if camera not in dataset.cameras:
        raise DatasetError(dataset.root, f"no camera {camera!r}; the dataset's cameras are {sorted(dataset.cameras)}")
    cache = FeatureCache.for_encoder(dataset.root, frame_encoder, camera)
    episodes = list(dataset.episode_indices if episodes is None else episodes)
    mine = [ep for k, ep in enumerate(episodes) if k % world_size == rank]
    n = cache.fill(mine, dataset.episode_length, lambda ep: dataset.episode_frames(ep, camera),
                   frame_encoder.encode, progress=progress and rank == 0)
    log.info("feature cache %s: %d episodes encoded, %d reused", cache.dir, n, len(mine) - n)
    return cache


def default_frame_encoder(encoder, device="cpu", batch_size: int = 64):
    """The planner's frame encoder for ``encoder`` (same defaults as ``VJEPAWorldModel.from_modules``)."""
    from vjepa_planning.worldmodel.world_model import VJEPAFrameEncoder

    return VJEPAFrameEncoder(encoder, device=device, dtype=torch.float32, batch_size=batch_size,
                             mean=IMAGENET_MEAN, std=IMAGENET_STD)
