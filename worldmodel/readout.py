"""Gripper readout: is the hand closed in this image? A small CNN on the camera frame, fit on a dataset's
frames and measured gripper states.

Why it exists: the shipped encoder sees a frame as 6 x 6 tokens of a 96 px crop, and the fingers are a
few pixels of one or two of them. Its tokens tell an open hand from a closed one on 78% of held-out frames
with a linear read-out (`benchmarks/linear_probe.py --gripper`), so the embedding distance to a goal photo
barely changes with the gripper, and a planner steered by it alone closes the hand early, or never (README,
"how the default got here"). The same frames at 128 px tell it on > 99% with this CNN. The planner reads
each goal image with it once (`VJEPAWorldModel.gripper_closed`) and scores every candidate's imagined
gripper against it (`planners/base.py`, `gripper_goal_weight`). It is fit on logged frames and gripper
states only, as post-training is, so a real robot's logs give its own readout.

    fit = fit_gripper_readout(frames, closed)          # uint8 [M, H, W, 3], bool [M]
    p = fit.readout.read(goal_image)                   # uint8 [H, W, 3] or [B, H, W, 3] -> [B] P(closed)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vjepa_planning.worldmodel.preprocess import preprocess_frames

log = logging.getLogger(__name__)

CLOSED_ABOVE = 0.25  # measured gripper (0 open .. 1 closed) above which a frame counts as closed: a hand
# pinching the 4 cm cube measures about 0.47, one closed on nothing 1.0


class GripperReadout(nn.Module):
    """uint8 images -> probability that the hand is closed (or closed on something). Strided 3x3 convolutions
    halve the side at each layer; a max over the last map keeps the few locations that show the fingers."""

    def __init__(self, img_size: int = 128, widths: tuple[int, ...] = (16, 32, 64, 64, 64)):
        super().__init__()
        self.arch = dict(img_size=img_size, widths=list(widths))
        layers, c = [], 3
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.GELU()]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, S, S] (``preprocess``) -> logits [B]."""
        h = self.features(x)  # [B, C, S / 2^L, S / 2^L]
        return self.head(h.amax(dim=(2, 3))).squeeze(-1)  # [B]

    def preprocess(self, images) -> torch.Tensor:
        """uint8 [H, W, 3] | [B, H, W, 3] -> [B, 3, S, S]: centre square, resized, ImageNet-normalised (as the encoder)."""
        device = next(self.parameters()).device
        return preprocess_frames(images, self.arch["img_size"], tubelet_size=1, device=device)[:, :, 0]  # [B, 3, S, S]

    @torch.no_grad()
    def read(self, images, batch_size: int = 256) -> torch.Tensor:
        """uint8 [H, W, 3] | [B, H, W, 3] -> [B] probability that the hand is closed (in eval mode: batch norm's
        running statistics)."""
        self.eval()
        images = images[None] if images.ndim == 3 else images
        return torch.cat([torch.sigmoid(self(self.preprocess(images[i : i + batch_size]))) for i in range(0, len(images), batch_size)])


@dataclass
class ReadoutFit:
    readout: GripperReadout
    train_accuracy: float  # on the last epoch's batches, in training mode
    val_accuracy: float | None


def fit_gripper_readout(frames: np.ndarray, closed: np.ndarray, *, epochs: int = 2, batch_size: int = 64, lr: float = 2e-3,
                        weight_decay: float = 0.01, img_size: int = 128, seed: int = 0, val_frames: np.ndarray | None = None,
                        val_closed: np.ndarray | None = None, progress: bool = True) -> ReadoutFit:
    """Train the readout (AdamW, binary cross-entropy) on uint8 ``frames`` [M, H, W, 3] labelled ``closed`` [M];
    accuracy on the held-out frames when given."""
    from tqdm import tqdm

    if frames.ndim != 4 or len(frames) != len(closed):
        raise ValueError(f"frames must be uint8 [M, H, W, 3] with one label each, got {frames.shape} and {np.shape(closed)}")
    y = torch.as_tensor(np.asarray(closed, dtype=np.float32))
    if len(y) == 0 or y.min() == y.max():
        raise ValueError("the gripper readout needs frames with the hand open and with it closed; these have only one kind")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    readout = GripperReadout(img_size)
    opt = torch.optim.AdamW(readout.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(y) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    right = seen = 0
    with tqdm(total=steps, desc="gripper readout", unit="batch", disable=not progress) as bar:
        for epoch in range(epochs):
            readout.train()
            right = seen = 0
            for idx in torch.randperm(len(y), generator=g).split(batch_size):
                logits = readout(readout.preprocess(frames[idx.numpy()]))
                loss = F.binary_cross_entropy_with_logits(logits, y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                right += int(((logits > 0) == (y[idx] > 0.5)).sum())
                seen += len(idx)
                bar.update()
                bar.set_postfix(epoch=epoch + 1, loss=f"{float(loss.detach()):.4f}")
    readout.eval().requires_grad_(False)
    val = None if val_frames is None or len(val_frames) == 0 else accuracy(readout, val_frames, val_closed)
    return ReadoutFit(readout, right / max(1, seen), val)


def accuracy(readout: GripperReadout, frames: np.ndarray, closed: np.ndarray) -> float:
    return float(((readout.read(frames) > 0.5).numpy() == np.asarray(closed, dtype=bool)).mean())


def fit_readout_on_dataset(data, *, camera: str, out=None, frame_step: int = 2, val_fraction: float = 0.1,
                           split_seed: int = 0, progress: bool = True, **fit_kw) -> dict:
    """Fit the gripper readout on a LeRobot dataset's ``camera`` frames (every ``frame_step``-th frame of the
    training episodes) and measured gripper states; score it on every frame of the held-out episodes (post-train's
    seeded split); write ``out`` (safetensors, recording the camera). Returns a summary dict."""
    from vjepa_planning.worldmodel import checkpoints
    from vjepa_planning.worldmodel.data.clips import check_dataset, split_episodes
    from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset

    dataset = LeRobotDataset(data, on_error="skip")
    check_dataset(dataset, camera)
    train_eps, val_eps = split_episodes(dataset.episode_indices, val_fraction, split_seed)

    def frames(episodes, step):
        images, closed = [], []
        for ep in episodes:
            images.append(dataset.episode_frames(ep, camera)[::step])
            closed.append(dataset.episode(ep).states[::step, 6] > CLOSED_ABOVE)
        return (np.concatenate(images), np.concatenate(closed)) if images else (np.zeros((0, 1, 1, 3), np.uint8), np.zeros(0, bool))

    (x, closed), (xv, closed_v) = frames(train_eps, frame_step), frames(val_eps, 1)
    fit = fit_gripper_readout(x, closed, val_frames=xv, val_closed=closed_v, progress=progress, **fit_kw)
    summary = {"data": str(data), "camera": camera, "frames": len(x), "closed_share": float(closed.mean()),
               "val_episodes": len(val_eps), "val_frames": len(xv), "train_accuracy": fit.train_accuracy,
               "val_accuracy": fit.val_accuracy, "frame_step": frame_step, "closed_above": CLOSED_ABOVE, **fit_kw}
    if out is not None:
        checkpoints.save_module(fit.readout, out, extra={**summary, "trained_by": "fit-readout"})
        summary["out"] = str(out)
    log.info("gripper readout: %s held-out accuracy on %d frames", "n/a" if fit.val_accuracy is None else f"{fit.val_accuracy:.4f}", len(xv))
    return summary
