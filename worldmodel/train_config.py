"""post-train's settings (worldmodel/train.py), in a module of their own so that composing configs, which
types the `train` group with them (configs/__init__.py), imports no training or dataset code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """post-train's settings and defaults, the shipped predictor's recipe (configs/train/post_train_sim.yaml
    names only what differs; the `train` group is typed by this class): ~75 min with threads=2 on the
    2-core CPU machine (~40 clips/s) after a ~4 min feature-cache fill."""

    steps: int = 5000
    batch_size: int = 32  # per rank
    num_frames: int = 8  # T: clip length (4 fps -> 2 s)
    clip_stride: int = 1  # distance between the starts of two clip windows of an episode
    min_episode_length: int = 3  # shorter episodes are skipped (need rollout_steps + 1 frames)
    rollout_steps: int = 2  # rollout loss: feed own predictions back for this many steps
    lr: float = 1e-3
    start_lr: float = 1e-4
    final_lr: float = 0.0
    warmup_steps: int = 100
    decay_fraction: float = 0.2  # WSD: linear decay to final_lr over the last 20 % of the steps
    weight_decay: float = 0.04
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    val_fraction: float = 0.1  # held-out episodes (seeded hash of the episode index)
    val_max_clips: int = 2000
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    deterministic: bool = True
    step_delay_s: float = 0.0  # tests only: slow the loop down so a kill lands mid-run
