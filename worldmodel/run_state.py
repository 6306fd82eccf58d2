"""A training run's bookkeeping on disk, shared by pretrain-encoder, post-train and train-lewm: atomic
checkpoint and text writes, the recipe check that guards a resume, the loss log trimmed back to the resumed
step, a flag that turns SIGTERM / SIGINT into a clean save, and ``run_steps``, the resumable loop of a
trainer that owns its model, optimiser and generator (pretrain-encoder, train-lewm)."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

log = logging.getLogger(__name__)


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


class Trainer(Protocol):
    """What ``run_steps`` drives: ``step(batch) -> metrics`` (with "loss"), the step counter, the summed
    wall time of training steps, and a state dict that includes every RNG and {"recipe": ...}."""

    step_count: int
    train_time_s: float
    device: torch.device

    def step(self, batch: Any) -> dict: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def run_steps(
    trainer: Trainer, next_batch: Callable[[], Any], run_dir: str | os.PathLike, *, steps: int, batch_size: int,
    desc: str, checkpoint_every: int = 200, log_every: int = 10, max_steps_this_call: int | None = None,
    progress: bool = True, main: bool = True, step_delay_s: float = 0.0,
) -> dict:
    """Train to ``steps``, resuming from ``run_dir/state.pt`` if present (its recipe must match).

    Writes ``run_dir/state.pt`` (atomic, every ``checkpoint_every`` steps and on exit, SIGTERM included)
    and ``run_dir/log.jsonl`` (one line per ``log_every`` steps; lines past a resumed step are dropped, as
    the resumed run redoes them). ``next_batch()`` must draw only from the trainer's own generator, so a
    killed and resumed run is bit-identical to an uninterrupted one. Under DDP every rank runs this loop
    and resumes from the same state; only the ``main`` rank writes. ``step_delay_s`` slows the loop down
    (tests: so that a kill lands mid-run). Returns {step, steps, complete, ...}.
    """
    from tqdm import tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path, log_path = run_dir / "state.pt", run_dir / "log.jsonl"
    if state_path.exists():
        state = torch.load(state_path, map_location=trainer.device, weights_only=False)
        check_same_recipe(state_path, state, trainer.state_dict()["recipe"])
        trainer.load_state_dict(state)
        log.info("resumed from %s at step %d", state_path, trainer.step_count)
    if main:
        truncate_log(log_path, trainer.step_count)
    stop_at = steps if max_steps_this_call is None else min(steps, trainer.step_count + max_steps_this_call)
    t0, steps_done, recent = time.time(), 0, []
    bar = tqdm(total=steps, initial=trainer.step_count, desc=desc, unit="step", disable=not progress, mininterval=5.0)
    with StopFlag() as stop, (open(log_path, "a") if main else open(os.devnull, "w")) as logf:
        try:
            while trainer.step_count < stop_at and not stop.set:
                t_step = time.time()
                info = trainer.step(next_batch())
                trainer.train_time_s += time.time() - t_step
                steps_done += 1
                recent.append(info["loss"])
                bar.update(1)
                if trainer.step_count % log_every == 0 or trainer.step_count == stop_at:
                    elapsed = time.time() - t0
                    row = {"step": trainer.step_count, **{k: round(v, 6) for k, v in info.items()},
                           "clips_per_s": round(steps_done * batch_size / max(elapsed, 1e-9), 2),
                           "elapsed_s": round(elapsed, 1)}
                    logf.write(json.dumps(row) + "\n")
                    logf.flush()
                    bar.set_postfix(loss=f"{np.mean(recent):.4f}", lr=f"{info.get('lr', 0.0):.2e}")
                    recent = []
                if main and trainer.step_count % checkpoint_every == 0:
                    atomic_torch_save(trainer.state_dict(), state_path)
                if step_delay_s:
                    time.sleep(step_delay_s)
        finally:
            bar.close()
            if main:
                atomic_torch_save(trainer.state_dict(), state_path)
    elapsed = time.time() - t0
    return {"step": trainer.step_count, "steps": steps, "complete": trainer.step_count >= steps,
            "elapsed_s": round(elapsed, 1), "train_time_s": round(trainer.train_time_s, 1),
            "clips_per_s": round(steps_done * batch_size / max(elapsed, 1e-9), 2)}


def log_rows(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of ``run_dir/log.jsonl``."""
    path = Path(run_dir) / "log.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []
