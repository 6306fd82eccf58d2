"""A training run's bookkeeping on disk, shared by pretrain-encoder and post-train: atomic checkpoint and
text writes, the recipe check that guards a resume, the loss log trimmed back to the resumed step, and a
flag that turns SIGTERM / SIGINT into a clean save."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import torch


def atomic_torch_save(obj, path: Path) -> None:
    """torch.save to a temporary name in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_same_recipe(state_path: Path, state: dict, recipe: dict[str, dict], free: frozenset[str] = frozenset()) -> None:
    """A run_dir's state may only be resumed by the recipe that wrote it: a changed step count, LR,
    batch or architecture would silently splice two different runs into one set of weights. `recipe`
    is {section: settings}; settings named in `free` (bookkeeping) may change. States written before
    recipes were recorded are not checked."""
    saved = state.get("recipe") or {}
    diffs = []
    for section, now in recipe.items():
        if section not in saved:
            continue
        before = {k: v for k, v in saved[section].items() if k not in free}
        now = {k: v for k, v in now.items() if k not in free}
        diffs += [f"{section}.{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(before) | set(now))
                  if _plain(before.get(k)) != _plain(now.get(k))]
    if diffs:
        raise ValueError(f"{state_path} (step {state.get('step')}) was written with other settings ({'; '.join(diffs)}): "
                         f"resume with the same settings, or give a new run_dir to start afresh")


def _plain(value):
    """Tuples and lists compare equal (configs arrive as either)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def truncate_log(path: Path, step: int) -> None:
    """Keep only log lines of steps <= ``step`` (a resumed run redoes the later ones)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
    atomic_write_text(path, "".join(ln + "\n" for ln in keep))


class StopFlag:
    """SIGTERM / SIGINT set a flag so the loop can save a checkpoint and leave cleanly."""

    def __init__(self):
        self.set = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def _handler(self, signum, frame):
        self.set = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
