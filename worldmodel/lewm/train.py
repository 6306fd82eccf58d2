"""Training LeWM end to end from pixels: next-embedding prediction + SIGReg, nothing frozen.

Per clip of T frames (uint8, decoded once into memory) and their actions:
    z_t = encoder(frame_t)                                        [B, T, D]
    pred = predictor(z_0 .. z_{T-2}, a_0 .. a_{T-2})              [B, T-1, D]  (causal: pred_t sees z_<=t)
    loss = mean (pred - z_1..z_{T-1})^2 + sigreg_weight * SIGReg(all B * T embeddings)
           [+ straightness_weight * curvature(z)]
The optional curvature term, 1 - cos between successive latent steps z_{t+1} - z_t, asks the encoder for
straight latent paths. A planner needs the energy to the goal to fall all the way along a path toward
it, and along a straight path it does; SIGReg alone spreads the embeddings but leaves far frames about
equally far (benchmarks/goal_energy_profile.py). The term is off by default (LeWM's recipe).
Gradients flow into both sides of the prediction loss (no stop-gradient, no EMA target): SIGReg alone
keeps the embeddings from collapsing. The directions of each step's SIGReg sketch come from the trainer's
generator, as do the clips, so a killed and resumed run repeats the uninterrupted one exactly.

Collapse is watched, not hoped against: every step measures the per-dimension std and effective rank
of the batch's embeddings (sigreg.collapse_diagnostics), and after ``collapse_after`` steps a run whose
embeddings have collapsed stops with ``EmbeddingCollapse`` naming the figures, instead of writing a
world model whose energy is flat.

DDP (torchrun): every rank draws the same global batch from the shared generator and trains on its own
slice of it; gradients are all-reduced, so the weights, the generator and the resume state stay identical
on every rank and rank 0 alone writes files.

Read top to bottom: config, sampling, the trainer (loss, step, resume state), validation, export,
``train_lewm`` (the loop from run_state.run_steps) and ``train_lewm_from_dataset`` (train-lewm's whole
pipeline, from a dataset directory to the model file).
"""

from __future__ import annotations

import json
import os
import random
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.lewm.model import LeWM
from vjepa_planning.worldmodel.lewm.sigreg import collapse_diagnostics, random_directions, sigreg
from vjepa_planning.worldmodel.preprocess import preprocess_frames
from vjepa_planning.worldmodel.pretrain import ClipMemory, param_groups, warmup_cosine
from vjepa_planning.worldmodel.run_state import atomic_write_text, log_rows, run_steps


class EmbeddingCollapse(RuntimeError):
    """The encoder maps different frames to (nearly) the same embedding."""


@dataclass(frozen=True)
class LeWMTrainConfig:
    """train-lewm's settings and defaults, the shipped model's recipe (configs/train/lewm_sim.yaml names
    only what differs; the `train` group is typed by this class)."""

    steps: int = 4000
    batch_size: int = 16  # clips per step and rank
    # T: T - 1 predictions per clip from histories of 1 .. T - 1 frames; 6 = planning's 4 context frames
    # + 2 imagined steps, so every position planning uses is trained
    num_frames: int = 6
    frame_step: int = 1
    lr: float = 5e-4
    start_lr: float = 5e-5
    final_lr: float = 1e-6
    warmup_steps: int = 100
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    sigreg_weight: float = 0.1  # lambda, LeWM's only loss weight
    sigreg_directions: int = 256
    straightness_weight: float = 0.0  # curvature of the clip's latent path (0: LeWM's two-term loss)
    collapse_after: int = 200  # steps before the collapse check starts
    min_effective_rank: float = 2.0  # of the batch's embeddings (D for an isotropic cloud, 1 for a line)
    min_std: float = 0.05  # mean per-dimension std of the batch's embeddings
    seed: int = 0

    def __post_init__(self):
        if self.straightness_weight and self.num_frames < 3:
            raise ValueError(f"train-lewm: train.straightness_weight needs clips of at least 3 frames to measure a "
                             f"turn, and train.num_frames is {self.num_frames}")


def curvature(z: torch.Tensor) -> torch.Tensor:
    """Mean 1 - cos between successive steps of each latent path, z [B, T, D] with T >= 3: 0 on a
    straight path whatever its speed, 1 on one that turns at right angles, 2 on one that doubles back."""
    v = z[:, 1:] - z[:, :-1]  # [B, T-1, D]
    return (1 - F.cosine_similarity(v[:, 1:], v[:, :-1], dim=-1, eps=1e-6)).mean()


def sample_batch(memory: ClipMemory, starts: torch.Tensor, cfg: LeWMTrainConfig, g: torch.Generator,
                 rank: int = 0, world_size: int = 1):
    """(uint8 frames [B, T, S, S, 3], actions [B, T, A]): this rank's B clips of a global batch of
    B * world_size random clips (the same draws on every rank)."""
    first = starts[torch.randint(0, starts.numel(), (cfg.batch_size * world_size,), generator=g)]  # [B * W]
    first = first[rank * cfg.batch_size : (rank + 1) * cfg.batch_size]  # [B]
    idx = first[:, None] + torch.arange(cfg.num_frames) * cfg.frame_step  # [B, T]
    return memory.frames[idx], memory.actions[idx]


# ----------------------------------------------------------------------------- the trainer


class LeWMTrainer:
    """The model, its optimiser and generator; ``step`` does one optimisation step (run_state.Trainer)."""

    def __init__(self, model: LeWM, cfg: LeWMTrainConfig, device: torch.device | str = "cpu"):
        self.cfg, self.device = cfg, torch.device(device)
        self.model = model.to(self.device).train()
        self.distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        self.rank, self.world_size = (dist.get_rank(), dist.get_world_size()) if self.distributed else (0, 1)
        self.net = torch.nn.parallel.DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None) if self.distributed else self.model
        self.optimizer = torch.optim.AdamW(param_groups([self.model], cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
        self.step_count, self.train_time_s = 0, 0.0
        self.generator = torch.Generator().manual_seed(cfg.seed)

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()

    def pixels(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, S, S, 3] -> normalised [B, T, 3, S, S], preprocessed exactly as ``LeWMWorldModel.encode`` does."""
        B, T = frames.shape[:2]
        x = preprocess_frames(frames.flatten(0, 1), self.model.img_size, 1, device=self.device)[:, :, 0]  # [B*T, 3, S, S]
        return x.unflatten(0, (B, T))

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, S, S, 3] -> [B, T, D]."""
        return self.model.encoder(self.pixels(frames).flatten(0, 1)).float().unflatten(0, frames.shape[:2])

    def loss(self, frames: torch.Tensor, actions: torch.Tensor, directions: torch.Tensor):
        with self._autocast():
            z, pred = self.net(self.pixels(frames), actions.to(self.device))  # [B, T, D], [B, T-1, D]
        z = z.float()
        pred_loss = F.mse_loss(pred.float(), z[:, 1:])
        reg = sigreg(z, directions=directions)
        loss = pred_loss + self.cfg.sigreg_weight * reg
        bend = curvature(z) if z.shape[1] >= 3 else z.new_zeros(())
        if self.cfg.straightness_weight:
            loss = loss + self.cfg.straightness_weight * bend
        return loss, pred_loss, reg, bend, z

    def step(self, batch) -> dict:
        c = self.cfg
        lr = warmup_cosine(self.step_count, c.steps, c.warmup_steps, c.start_lr, c.lr, c.final_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        directions = random_directions(self.model.embed_dim, c.sigreg_directions, self.generator).to(self.device)
        loss, pred_loss, reg, bend, z = self.loss(*batch, directions)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip) if c.grad_clip else torch.tensor(0.0)
        self.optimizer.step()
        self.step_count += 1
        diag = collapse_diagnostics(z.detach())
        if self.distributed:  # the same decision on every rank: the mean of the ranks' figures
            figures = torch.tensor(list(diag.values()), dtype=torch.float64, device=self.device)
            dist.all_reduce(figures)
            diag = dict(zip(diag, (figures / self.world_size).tolist()))
        if self.step_count >= c.collapse_after and (diag["effective_rank"] < c.min_effective_rank or diag["std_mean"] < c.min_std):
            raise EmbeddingCollapse(
                f"train-lewm: the embeddings collapsed at step {self.step_count} (effective rank "
                f"{diag['effective_rank']:.2f} < {c.min_effective_rank} or mean std {diag['std_mean']:.3f} < {c.min_std}; "
                f"SIGReg {reg.item():.2f}): raise train.sigreg_weight or lower train.lr, and start a new run_dir")
        return {"loss": loss.item(), "pred_loss": pred_loss.item(), "sigreg": reg.item(), "curvature": bend.item(), "lr": lr,
                "grad_norm": float(grad_norm), **diag}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step_count,
                "train_time_s": self.train_time_s, "generator": self.generator.get_state(),
                "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(), "python_rng": random.getstate(),
                "recipe": {"train": asdict(self.cfg), "model": dict(self.model.arch)}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count, self.train_time_s = int(state["step"]), float(state.get("train_time_s", 0.0))
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])


def build_trainer(model_cfg: dict, cfg: LeWMTrainConfig, memory: ClipMemory, device="cpu") -> LeWMTrainer:
    """A LeWM initialised from ``cfg.seed``, its actions standardised with ``memory``'s statistics."""
    if memory.actions is None:
        raise ValueError("train-lewm needs the actions with the frames: load_clip_memory(..., with_actions=True)")
    torch.manual_seed(cfg.seed)
    model = LeWM(img_size=int(memory.frames.shape[1]), **model_cfg)
    model.predictor.action_mean.copy_(memory.actions.mean(dim=0))
    model.predictor.action_std.copy_(memory.actions.std(dim=0).clamp(min=1e-3))  # a constant column stays finite
    return LeWMTrainer(model, cfg, device)


# ----------------------------------------------------------------------------- validation and export


@torch.no_grad()
def validate(trainer: LeWMTrainer, memory: ClipMemory, max_clips: int = 1000, batch_size: int = 64) -> dict:
    """Held-out next-embedding MSE of the model against copying the last embedding, and the collapse figures."""
    model, cfg = trainer.model, trainer.cfg
    starts = memory.clip_starts(cfg.num_frames, cfg.frame_step)
    if starts.numel() > max_clips:
        starts = starts[torch.randperm(starts.numel(), generator=torch.Generator().manual_seed(cfg.seed))[:max_clips]]
    model.eval()
    sums, zs = {"model": 0.0, "copy_last": 0.0, "curvature": 0.0}, []
    for i in range(0, starts.numel(), batch_size):
        idx = starts[i : i + batch_size, None] + torch.arange(cfg.num_frames) * cfg.frame_step  # [b, T]
        z = trainer.embed(memory.frames[idx])  # [b, T, D]
        pred, _ = model.predictor(z[:, :-1], memory.actions[idx][:, :-1].to(trainer.device))
        sums["model"] += float(((pred.float() - z[:, 1:]) ** 2).mean(dim=(1, 2)).sum())
        sums["copy_last"] += float(((z[:, :-1] - z[:, 1:]) ** 2).mean(dim=(1, 2)).sum())
        sums["curvature"] += float(curvature(z)) * z.shape[0] if z.shape[1] >= 3 else 0.0
        zs.append(z.flatten(0, 1))
    model.train()
    n = max(1, starts.numel())
    out = {k: round(v / n, 5) for k, v in sums.items()}
    out["ratio_model_to_copy"] = round(out["model"] / max(out["copy_last"], 1e-12), 4)
    z = torch.cat(zs) if zs else torch.zeros(1, model.embed_dim)
    out.update({k: round(v, 4) for k, v in collapse_diagnostics(z).items()}, clips=int(starts.numel()))
    return out


def export(model: LeWM, out: str | os.PathLike, extra: dict) -> None:
    """Atomic ``checkpoints.save_module`` of a float32 CPU copy (BatchNorm in eval mode uses its running stats)."""
    import copy

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    checkpoints.save_module(copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval(), tmp, extra=extra)
    os.replace(tmp, out)


def train_lewm(trainer: LeWMTrainer, memory: ClipMemory, run_dir, out=None, *, val_memory: ClipMemory | None = None,
               checkpoint_every: int = 100, log_every: int = 10, max_steps_this_call: int | None = None,
               progress: bool = True, extra_meta: dict | None = None, step_delay_s: float = 0.0) -> dict:
    """Train (or resume) to ``cfg.steps``; when complete, validate on ``val_memory`` and write ``out``
    and ``run_dir/metrics.json``. Returns the run_steps summary with the validation figures."""
    cfg = trainer.cfg
    starts = memory.clip_starts(cfg.num_frames, cfg.frame_step)
    if starts.numel() == 0:
        raise ValueError(f"train-lewm: no episode has the {cfg.num_frames} frames a clip needs (train.num_frames)")
    summary = run_steps(
        trainer, lambda: sample_batch(memory, starts, cfg, trainer.generator, trainer.rank, trainer.world_size),
        run_dir, steps=cfg.steps, batch_size=cfg.batch_size * trainer.world_size, desc="train-lewm",
        checkpoint_every=checkpoint_every, log_every=log_every, max_steps_this_call=max_steps_this_call,
        progress=progress and trainer.rank == 0, main=trainer.rank == 0, step_delay_s=step_delay_s)
    if trainer.distributed:  # BatchNorm's running statistics: rank 0's (DDP broadcasts them before each forward)
        for buffer in trainer.model.buffers():
            dist.broadcast(buffer, 0)
    summary.update(rank=trainer.rank, world_size=trainer.world_size,
                   weights_sha256=checkpoints.tensors_sha256(trainer.model.state_dict()))
    if summary["complete"] and trainer.rank == 0:
        metrics = validate(trainer, val_memory) if val_memory is not None and val_memory.num_frames else {}
        summary["validation"] = metrics
        atomic_write_text(Path(run_dir) / "metrics.json", json.dumps(metrics, indent=1))
        if out is not None:
            rows = log_rows(run_dir)
            last = rows[-1] if rows else {}
            export(trainer.model, out, {"trained_by": "train-lewm", "objective": "next-embedding MSE + SIGReg",
                                        "train": asdict(cfg), "steps": cfg.steps, "train_time_s": summary["train_time_s"],
                                        "final": {k: last.get(k) for k in ("loss", "pred_loss", "sigreg", "effective_rank")},
                                        "validation": metrics, **(extra_meta or {})})
            summary["out"] = str(out)
    return summary


def train_lewm_from_dataset(data: str | os.PathLike, camera: str, img_size: int, model_cfg: dict, cfg: LeWMTrainConfig, *,
                            run_dir: str | os.PathLike, out: str | os.PathLike | None = None, val_fraction: float,
                            checkpoint_every: int, log_every: int, step_delay_s: float,
                            device: str | torch.device | None = None, threads: int | None = None,
                            max_steps_this_call: int | None = None, progress: bool = True, config: dict | None = None) -> dict:
    """train-lewm: join the torchrun process group if there is one (a CUDA device per rank), decode ``camera``
    of ``data``'s training and held-out episodes (split seeded by ``cfg.seed``) at ``img_size`` with their
    actions, build the trainer and ``train_lewm`` it. ``config``, the command's whole config, goes into the
    model's metadata. Returns the summary with the split's counts; under DDP every rank also writes its own
    to ``run_dir/final_rank<r>.json`` (the ranks' weights can then be compared)."""
    from vjepa_planning.worldmodel.data.clips import load_training_clips
    from vjepa_planning.worldmodel.train import init_distributed, resolve_device

    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(device)
    dd = init_distributed(device)
    if device.type == "cuda" and dd.world_size > 1:
        device = torch.device("cuda", dd.rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    progress = progress and dd.main
    clips = load_training_clips(data, camera, img_size, val_fraction, cfg.seed, with_val=True, with_actions=True,
                                progress=progress)
    trainer = build_trainer(model_cfg, cfg, clips.train, device)
    summary = train_lewm(trainer, clips.train, run_dir, out, val_memory=clips.val, checkpoint_every=int(checkpoint_every),
                         log_every=int(log_every), max_steps_this_call=max_steps_this_call, progress=progress,
                         extra_meta={"camera": camera, "data": clips.meta(config)}, step_delay_s=float(step_delay_s))
    summary.update(clips.counts())
    if dd.world_size > 1:
        atomic_write_text(Path(run_dir) / f"final_rank{dd.rank}.json", json.dumps(summary, indent=1))
    return summary
