"""Clips of T consecutive frames (states, actions, cached encoder features) for post-training.

* ``load_episodes``: every usable episode's states / actions / features in memory (features from
  the feature cache, float16). Episodes shorter than ``min_length`` frames are skipped with one
  log line naming them; a dataset with no usable episode, or without the needed columns, raises
  ``DatasetError`` naming the problem.
* ``split_episodes``: held-out validation episodes, split by episode with a seeded permutation.
* ``load_training_clips``: the data step of pretrain-encoder and train-lewm: open a dataset, split it,
  decode the training (and held-out) episodes' frames into memory.
* ``clip_windows``: (episode, start, length) of every clip; an episode shorter than T gives one
  shorter clip (the batch pads it and masks the padding out of the loss: with block-causal
  attention, padding *after* the real frames cannot change the predictions for them).
* ``ClipSampler``: a seeded, resumable order over the windows (epoch, position), sharded over
  DDP ranks; ``collate`` stacks windows into padded batch tensors.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from vjepa_planning.worldmodel.data.lerobot import DatasetError

if TYPE_CHECKING:
    from vjepa_planning.worldmodel.pretrain import ClipMemory

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("observation.state", "action")


@dataclass
class EpisodeArrays:
    index: int
    states: np.ndarray  # [L, 7] float32
    actions: np.ndarray  # [L, 7] float32; action[t] takes state t to t + 1
    features: np.ndarray  # [L, N, D] float16, layer-normed encoder output per frame

    @property
    def length(self) -> int:
        return len(self.states)


def check_dataset(dataset, camera: str, state_dim: int = 7, action_dim: int = 7) -> None:
    """Raise ``DatasetError`` naming what a post-training dataset lacks."""
    for col in REQUIRED_COLUMNS:
        if col not in dataset.features:
            raise DatasetError(dataset.root, f"required column {col!r} is missing (columns: {sorted(dataset.features)})")
    for col, dim in (("observation.state", state_dim), ("action", action_dim)):
        shape = tuple(dataset.features[col].shape)
        if shape != (dim,):
            raise DatasetError(dataset.root, f"column {col!r} has shape {shape}, expected ({dim},)")
    if camera not in dataset.cameras:
        raise DatasetError(dataset.root, f"required camera {camera!r} is missing (cameras: {sorted(dataset.cameras)})")
    if dataset.num_episodes == 0:
        raise DatasetError(dataset.root, "the dataset has no (readable) episodes")


def usable_episodes(dataset, min_length: int) -> list[int]:
    """Episodes with at least ``min_length`` frames; logs the skipped ones; raises if none is left."""
    keep = [ep for ep in dataset.episode_indices if dataset.episode_length(ep) >= min_length]
    short = [ep for ep in dataset.episode_indices if dataset.episode_length(ep) < min_length]
    if short:
        shown = ", ".join(str(e) for e in short[:20]) + (" ..." if len(short) > 20 else "")
        log.warning("%s: skipping %d episode(s) shorter than %d frames: %s", dataset.root, len(short), min_length, shown)
    if not keep:
        longest = max((dataset.episode_length(ep) for ep in dataset.episode_indices), default=0)
        raise DatasetError(dataset.root, f"every episode is too short: post-training needs at least {min_length} "
                                         f"frames per episode, the longest has {longest}")
    return keep


def is_validation_episode(episode_index: int, val_fraction: float, seed: int) -> bool:
    """Seeded hash of the episode index: the same episode stays held out as a dataset grows."""
    h = hashlib.sha256(f"{seed}:{episode_index}".encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64 < val_fraction


def split_episodes(episodes: Sequence[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, val) episode indices (sorted), split by episode: an episode is held out when a seeded
    hash of its index falls below ``val_fraction`` (so pretraining, post-training and the probes agree
    on the held-out set, and it is stable while a dataset grows). With two or more episodes and
    val_fraction > 0 at least one is held out and at least one kept."""
    episodes = sorted(episodes)
    val = [ep for ep in episodes if is_validation_episode(ep, val_fraction, seed)]
    if val_fraction > 0 and len(episodes) >= 2:
        score = lambda ep: hashlib.sha256(f"{seed}:{ep}".encode()).digest()
        if not val:
            val = [min(episodes, key=score)]
        if len(val) == len(episodes):
            val.remove(max(val, key=score))
    train = [ep for ep in episodes if ep not in set(val)]
    return train, sorted(val)


@dataclass
class TrainingClips:
    """A dataset's training episodes decoded into memory (``train``), and its held-out ones (``val``) when asked for."""

    data: str
    camera: str
    train: ClipMemory
    val: ClipMemory | None
    train_episodes: list[int]
    held_out_episodes: list[int]

    def counts(self) -> dict:
        """The split's figures, as a trainer's summary reports them."""
        return {"train_episodes": len(self.train_episodes), "train_frames": self.train.num_frames,
                "held_out_episodes": len(self.held_out_episodes)}

    def meta(self, config: dict | None) -> dict:
        """Where a model's training frames came from, for its weights file's metadata."""
        return {"data": self.data, "camera": self.camera, **self.counts(), "config": config}


def load_training_clips(data, camera: str, size: int, val_fraction: float, seed: int, *, with_val: bool = False,
                        with_actions: bool = False, progress: bool = True) -> TrainingClips:
    """Open the dataset at ``data``, hold out episodes with ``split_episodes`` (the same set as post-training
    and the probes) and decode ``camera`` of the training ones (and, ``with_val``, of the held-out ones) at
    ``size`` with ``pretrain.load_clip_memory``."""
    from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset
    from vjepa_planning.worldmodel.pretrain import load_clip_memory  # lazily: pretrain.py is the heavier module

    dataset = LeRobotDataset(data, on_error="skip")
    train_eps, val_eps = split_episodes(dataset.episode_indices, float(val_fraction), int(seed))
    load = lambda eps: load_clip_memory(dataset, camera, int(size), eps, progress=progress, with_actions=with_actions)
    train = load(train_eps)
    val = load(val_eps) if with_val and val_eps else None
    return TrainingClips(str(data), camera, train, val, train_eps, val_eps)


def load_episodes(dataset, cache, episodes: Sequence[int]) -> list[EpisodeArrays]:
    """States, actions and cached features of ``episodes`` (all must be cached)."""
    out = []
    for ep in episodes:
        e = dataset.episode(ep)
        z = np.asarray(cache.load(ep))
        if z.shape[0] != e.length:
            raise DatasetError(cache.path(ep), f"cached features have {z.shape[0]} frames, episode {ep} has {e.length}")
        out.append(EpisodeArrays(ep, e.states.astype(np.float32), e.actions.astype(np.float32), z))
    return out


def clip_windows(episodes: Sequence[EpisodeArrays], num_frames: int, stride: int = 1) -> np.ndarray:
    """int64 [M, 3] rows (position in ``episodes``, start frame, clip length)."""
    rows = []
    for k, e in enumerate(episodes):
        if e.length >= num_frames:
            for s in range(0, e.length - num_frames + 1, stride):
                rows.append((k, s, num_frames))
        else:
            rows.append((k, 0, e.length))
    return np.asarray(rows, np.int64).reshape(-1, 3)


@dataclass
class ClipBatch:
    features: torch.Tensor  # [B, T, N, D] float32
    states: torch.Tensor  # [B, T, 7]
    actions: torch.Tensor  # [B, T, 7]
    valid: torch.Tensor  # [B, T] bool, False on padding

    def to(self, device) -> ClipBatch:
        return ClipBatch(*(t.to(device, non_blocking=True) for t in
                           (self.features, self.states, self.actions, self.valid)))


def collate(episodes: Sequence[EpisodeArrays], windows: np.ndarray, num_frames: int) -> ClipBatch:
    """Stack windows [B, 3] into a batch padded to ``num_frames`` (padding repeats the last frame)."""
    B = len(windows)
    N, D = episodes[0].features.shape[1:]
    z = np.empty((B, num_frames, N, D), np.float32)
    s = np.empty((B, num_frames, 7), np.float32)
    a = np.zeros((B, num_frames, 7), np.float32)
    valid = np.zeros((B, num_frames), bool)
    for i, (k, start, length) in enumerate(windows):
        e = episodes[k]
        sl = slice(start, start + length)
        z[i, :length], s[i, :length], a[i, :length] = e.features[sl], e.states[sl], e.actions[sl]
        z[i, length:], s[i, length:] = z[i, length - 1], s[i, length - 1]
        valid[i, :length] = True
    return ClipBatch(torch.from_numpy(z), torch.from_numpy(s), torch.from_numpy(a), torch.from_numpy(valid))


class ClipSampler:
    """Seeded order over clip windows, epoch after epoch; ``state_dict`` / ``load_state_dict``
    resume at the exact next batch. Rank r of W takes every W-th window of each global batch, so
    the global batch (``batch_size`` * W windows) is the same for any W."""

    def __init__(self, num_windows: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if num_windows < 1:
            raise ValueError("no clip windows to sample from")
        self.n, self.batch_size, self.seed = num_windows, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def next_indices(self) -> np.ndarray:
        """Window indices of this rank's next batch ([batch_size])."""
        need = self.batch_size * self.world_size
        picked = []
        while need:
            if self.position >= self.n:
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            take = min(need, self.n - self.position)
            picked.append(self._order[self.position : self.position + take])
            self.position += take
            need -= take
        return np.concatenate(picked)[self.rank :: self.world_size]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "n": self.n, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state["n"] != self.n or state["seed"] != self.seed:
            raise ValueError(f"sampler state is for {state['n']} windows / seed {state['seed']}, "
                             f"this run has {self.n} / {self.seed}: the data or split changed since the checkpoint")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)
