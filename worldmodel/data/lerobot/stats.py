"""Per-feature statistics: per-episode stats, pooling, and their JSON / episode-meta forms.

Each feature gets LeRobot's statistics: min, max, mean, std (population), count, and the quantiles
q01, q10, q50, q90, q99. Vectors have shape (n,); camera stats are per channel of images scaled to
[0, 1], shape (3, 1, 1), stored nested in that shape both in stats.json and in the episode meta (as
LeRobot writes them, so either tool can append to the other's dataset). Pooling over episodes is exact
for min / max / mean / std; quantiles cannot be pooled exactly and, as in LeRobot, pool to an envelope
(the lowest q01 / q10 / q50 and the highest q90 / q99 of the episodes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vjepa_planning.worldmodel.data.lerobot.format import QUANTILES, STAT_KEYS

Stats = dict[str, np.ndarray]


def array_stats(x: np.ndarray) -> Stats:
    """Stats over axis 0 of ``[T, n]`` values (population std, like numpy's default)."""
    x = x.astype(np.float64).reshape(len(x), -1)
    return {
        "min": x.min(0),
        "max": x.max(0),
        "mean": x.mean(0),
        "std": x.std(0),
        "count": np.array([len(x)], dtype=np.int64),
        **{k: np.quantile(x, q, axis=0) for k, q in QUANTILES.items()},
    }


class ImageStats:
    """Running per-channel stats of images scaled to [0, 1]; shape (3, 1, 1) like LeRobot."""

    def __init__(self) -> None:
        self.n = 0
        self.s = np.zeros(3)
        self.s2 = np.zeros(3)
        self.lo = np.full(3, np.inf)
        self.hi = np.full(3, -np.inf)
        self.sample: list[np.ndarray] = []  # every 8th pixel each way, for the quantiles

    def add(self, img: np.ndarray) -> None:
        # Every second pixel in each direction: plenty for channel statistics, 4x cheaper.
        px = img[::2, ::2].reshape(-1, 3).astype(np.float64) / 255.0
        self.sample.append(img[::8, ::8].reshape(-1, 3))
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
            **{k: v.reshape(3, 1, 1) for k, v in _pixel_quantiles(np.concatenate(self.sample)).items()},
        }


def _pixel_quantiles(px: np.ndarray) -> Stats:
    """uint8 pixels [M, 3] -> per-channel quantiles of px / 255 (from a histogram of the 256 levels: exact)."""
    out: Stats = {k: np.zeros(3) for k in QUANTILES}
    for c in range(3):
        cdf = np.cumsum(np.bincount(px[:, c], minlength=256)) / len(px)
        for k, q in QUANTILES.items():
            out[k][c] = np.searchsorted(cdf, q) / 255.0
    return out


def _aggregate_stats(parts: Sequence[Stats]) -> Stats:
    """Exact pooled min/max/mean/std over episodes (each weighted by its count)."""
    n = np.array([float(p["count"][0]) for p in parts])
    total = n.sum()
    w = (n / total).reshape((-1,) + (1,) * parts[0]["mean"].ndim)
    means = np.stack([p["mean"] for p in parts])
    mean = (w * means).sum(0)
    var = (w * (np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2)).sum(0)
    out = {
        "min": np.min(np.stack([p["min"] for p in parts]), 0),
        "max": np.max(np.stack([p["max"] for p in parts]), 0),
        "mean": mean,
        "std": np.sqrt(np.maximum(var, 0.0)),
        "count": np.array([int(total)], dtype=np.int64),
    }
    for k, q in QUANTILES.items():  # an envelope, as LeRobot pools them
        if all(k in p for p in parts):
            out[k] = (np.min if q <= 0.5 else np.max)(np.stack([p[k] for p in parts]), 0)
    return out


def stat_names(stats: Stats) -> list[str]:
    """The stats a feature has, in LeRobot's order: the five basic ones, then the quantiles present."""
    return [*STAT_KEYS, *(k for k in QUANTILES if k in stats)]


def stats_to_json(stats: Mapping[str, Stats]) -> dict[str, dict[str, Any]]:
    return {k: {s: np.asarray(v[s]).tolist() for s in stat_names(v)} for k, v in stats.items()}


def stats_from_json(d: Mapping[str, Any]) -> dict[str, Stats]:
    # Features lacking any of our five stats (foreign stats.json) are left out; quantiles are kept if there.
    return {
        k: {s: np.asarray(v[s], dtype=np.int64 if s == "count" else np.float64) for s in stat_names(v)}
        for k, v in d.items()
        if isinstance(v, Mapping) and all(s in v for s in STAT_KEYS)
    }


def merge_stats(per_episode: Sequence[Mapping[str, Stats]]) -> dict[str, Stats]:
    keys = [k for k in per_episode[0] if all(k in p for p in per_episode)] if per_episode else []
    return {k: _aggregate_stats([p[k] for p in per_episode]) for k in keys}


def stats_from_meta_row(row: Mapping[str, Any], features_json: Mapping[str, Any]) -> dict[str, Stats]:
    """Per-episode stats stored in ``stats/<feature>/<stat>`` columns (nested (3, 1, 1) lists for cameras,
    as LeRobot writes them, or flat lists, as this project wrote them before)."""
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
                for s in [*STAT_KEYS, *(k for k in QUANTILES if f"stats/{key}/{k}" in row)]
            }
        except (KeyError, ValueError, TypeError):
            continue  # foreign layout of per-episode stats: ignore, stats.json still stands
    return out
