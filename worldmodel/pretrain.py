"""V-JEPA masked-latent pretraining of a small video encoder.

Objective (V-JEPA / V-JEPA 2): a clip is cut into tubelet x patch x patch tokens; multi-block
masks (masks.py) hide most of them. The *context encoder* sees only the visible tokens; a narrow
*predictor* ViT gets the context tokens plus one learned mask token per hidden cell (placed by the
cell's 3D RoPE position) and predicts, for every hidden cell, the *target encoder*'s layer-normed
output there. The target encoder is an exponential moving average (EMA) of the context encoder
(momentum ramped towards 1) and gets no gradient; the loss is L1 in latent space (no pixels).

Read top to bottom: clip memory (videos decoded once, uint8 at the encoder's input size) and
sampling / augmentation, the masked predictor, schedules, the ``Pretrainer`` (one optimisation
step, EMA, state for resuming), then ``pretrain`` (the loop: progress bar, periodic atomic
checkpoints via run_state.py, resume after a kill, loss log on disk, export of the EMA encoder) and
``pretrain_from_dataset`` (pretrain-encoder's whole pipeline, from a dataset directory to the encoder file).
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vjepa_planning.robot_pose.imaging import center_square_crop
from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.encoder import Block, VisionTransformer, build_encoder, init_vit_weights
from vjepa_planning.worldmodel.lewm.sigreg import random_directions, sigreg
from vjepa_planning.worldmodel.masks import BlockMaskSpec, sample_batch_masks
from vjepa_planning.worldmodel.preprocess import IMAGENET_MEAN, IMAGENET_STD
from vjepa_planning.worldmodel.rope import grid_positions, rope_tables
from vjepa_planning.worldmodel.run_state import log_rows, run_steps

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- clip memory


def resize_frames_uint8(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> uint8 [T, size, size, 3]: centre square crop + antialiased bilinear
    resize, the geometry of ``preprocess.preprocess_frames`` (only rounded back to uint8)."""
    x = torch.from_numpy(np.ascontiguousarray(center_square_crop(frames)))  # [T, side, side, 3]
    side = x.shape[1]
    x = x.permute(0, 3, 1, 2).float()  # [T, 3, side, side]
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()  # [T, S, S, 3]


@dataclass
class ClipMemory:
    """All frames of the chosen episodes, uint8 [F, S, S, 3], with episode boundaries (and, when loaded
    with them, the action taken after each frame, float32 [F, A])."""

    frames: torch.Tensor  # [F, S, S, 3] uint8
    starts: np.ndarray  # [E] first frame of each episode in ``frames``
    lengths: np.ndarray  # [E]
    episode_indices: list[int] = field(default_factory=list)
    actions: torch.Tensor | None = None  # [F, A] float32

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def clip_starts(self, num_frames: int, frame_step: int = 1) -> torch.Tensor:
        """Global index of every frame that starts a full clip inside its episode."""
        span = (num_frames - 1) * frame_step + 1
        out = [np.arange(s, s + n - span + 1) for s, n in zip(self.starts, self.lengths) if n >= span]
        return torch.from_numpy(np.concatenate(out) if out else np.zeros(0, np.int64))


def load_clip_memory(dataset, camera: str, size: int, episodes: Sequence[int] | None = None, progress: bool = True,
                     with_actions: bool = False) -> ClipMemory:
    """Decode ``camera`` of the given episodes (default: all) once, resized to ``size`` (with their actions)."""
    from tqdm import tqdm

    from vjepa_planning.worldmodel.data.lerobot import DatasetError

    if camera not in dataset.cameras:
        raise DatasetError(dataset.root, f"no camera {camera!r}; the dataset's cameras are {sorted(dataset.cameras)}")
    episodes = list(dataset.episode_indices if episodes is None else episodes)
    if not episodes:
        raise DatasetError(dataset.root, "no episodes to pretrain on")
    chunks, lengths, actions = [], [], []
    for ep in tqdm(episodes, desc="decoding videos", unit="ep", disable=not progress):
        f = resize_frames_uint8(dataset.episode_frames(ep, camera), size)
        chunks.append(f)
        lengths.append(f.shape[0])
        if with_actions:
            a = np.array(dataset.episode(ep).actions, np.float32)  # a writable copy
            if a.shape[0] != f.shape[0]:
                raise DatasetError(dataset.root, f"episode {ep}: {a.shape[0]} actions for {f.shape[0]} frames of {camera!r}")
            actions.append(torch.from_numpy(a))
    lengths = np.asarray(lengths, np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return ClipMemory(torch.cat(chunks), starts, lengths, episodes, torch.cat(actions) if with_actions else None)


def sample_clips(
    memory: ClipMemory, clip_starts: torch.Tensor, batch: int, num_frames: int, frame_step: int,
    image_prob: float, g: torch.Generator,
) -> torch.Tensor:
    """uint8 [B, T, S, S, 3]. With probability ``image_prob`` a sample is one frame repeated T times
    (a still image, as the encoder sees frames when planning); otherwise T frames of one episode."""
    use_image = torch.rand(batch, generator=g) < image_prob  # [B]
    if clip_starts.numel() == 0:
        use_image[:] = True
    first = torch.empty(batch, dtype=torch.int64)
    n_img = int(use_image.sum())
    if n_img:
        first[use_image] = torch.randint(0, memory.num_frames, (n_img,), generator=g)
    if batch - n_img:
        first[~use_image] = clip_starts[torch.randint(0, clip_starts.numel(), (batch - n_img,), generator=g)]
    offsets = torch.arange(num_frames) * frame_step  # [T]
    idx = first[:, None] + torch.where(use_image[:, None], 0, offsets[None])  # [B, T]
    return memory.frames[idx]  # [B, T, S, S, 3]


def augment(
    clips: torch.Tensor, g: torch.Generator, scale: tuple[float, float] = (0.8, 1.0),
    ratio: tuple[float, float] = (0.75, 1.35), mean=IMAGENET_MEAN, std=IMAGENET_STD,
) -> torch.Tensor:
    """uint8 [B, T, S, S, 3] -> normalised float [B, 3, T, S, S] with one random resized crop per
    clip (area fraction in ``scale``, aspect in ``ratio``, resized back to S x S). No flips: left and
    right mean something in the robot's frame."""
    B, T, S, _, _ = clips.shape
    x = clips.permute(0, 1, 4, 2, 3).reshape(B, T * 3, S, S).float().div_(255.0)  # [B, T*3, S, S]
    if scale != (1.0, 1.0) or ratio != (1.0, 1.0):
        area = scale[0] + (scale[1] - scale[0]) * torch.rand(B, generator=g)  # [B]
        log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * torch.rand(B, generator=g)
        r = log_r.exp()
        w = (area * r).sqrt().clamp(max=1.0)  # crop width as a fraction of the frame
        h = (area / r).sqrt().clamp(max=1.0)
        cx = (1 - w) * (2 * torch.rand(B, generator=g) - 1)  # crop centre in [-1, 1] coordinates
        cy = (1 - h) * (2 * torch.rand(B, generator=g) - 1)
        theta = torch.zeros(B, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
        grid = F.affine_grid(theta, (B, T * 3, S, S), align_corners=False)  # [B, S, S, 2]
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    x = x.view(B, T, 3, S, S).transpose(1, 2)  # [B, 3, T, S, S]
    m = torch.tensor(mean).view(1, 3, 1, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1, 1)
    return ((x - m) / s).contiguous()


# ----------------------------------------------------------------------------- masked predictor


class MaskedPredictor(nn.Module):
    """Narrow ViT: context tokens [B, Kc, D] + mask tokens at the target cells -> [B, Kt, D].

    Every token is rotated by the 3D RoPE of its own grid cell (context tokens keep their cells,
    mask tokens sit at the cells to predict), so no position embedding is added."""

    def __init__(self, embed_dim: int, predictor_embed_dim: int = 96, depth: int = 4, num_heads: int = 3,
                 mlp_ratio: float = 4.0, norm_eps: float = 1e-6):
        super().__init__()
        self.head_dim = predictor_embed_dim // num_heads
        self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, predictor_embed_dim))
        self.predictor_blocks = nn.ModuleList(
            [Block(predictor_embed_dim, num_heads, mlp_ratio, norm_eps=norm_eps) for _ in range(depth)]
        )
        self.predictor_norm = nn.LayerNorm(predictor_embed_dim, eps=norm_eps)
        self.predictor_proj = nn.Linear(predictor_embed_dim, embed_dim)
        init_vit_weights(self, self.predictor_blocks)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, ctx: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor,
                grid: tuple[int, int, int]) -> torch.Tensor:
        B, Kc, _ = ctx.shape
        Kt = tgt_idx.shape[1]
        x = self.predictor_embed(ctx)  # [B, Kc, W]
        x = torch.cat([x, self.mask_token.to(x.dtype).expand(B, Kt, -1)], dim=1)  # [B, Kc + Kt, W]
        idx = torch.cat([ctx_idx, tgt_idx], dim=1)  # [B, Kc + Kt]
        pos = [p[idx].unsqueeze(1) for p in grid_positions(*grid, device=x.device)]  # each [B, 1, K]
        cos, sin = rope_tables(*pos, self.head_dim, x.dtype)  # [B, 1, K, hd]
        for blk in self.predictor_blocks:
            x, _ = blk(x, cos, sin)
        return self.predictor_proj(self.predictor_norm(x[:, Kc:]))  # [B, Kt, D]


# ----------------------------------------------------------------------------- schedules


def warmup_cosine(step: int, total: int, warmup: int, start: float, peak: float, final: float) -> float:
    """Linear warmup start -> peak over ``warmup`` steps, then cosine peak -> final at ``total``."""
    if step < warmup:
        return start + (peak - start) * step / max(1, warmup)
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * t))


def ema_momentum(step: int, total: int, start: float, end: float) -> float:
    """Linear ramp start -> end over the run."""
    return start + (end - start) * min(1.0, step / max(1, total))


def param_groups(modules: Sequence[nn.Module], weight_decay: float) -> list[dict]:
    """Weight decay on matrices only (not on biases, LayerNorms or the mask token)."""
    decay, no_decay = [], []
    for m in modules:
        for name, p in m.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim < 2 or name.endswith("mask_token") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# ----------------------------------------------------------------------------- the trainer


@dataclass(frozen=True)
class PretrainConfig:
    """pretrain-encoder's settings and defaults, the shipped encoder's recipe, sized for ~1 h on one CPU core
    (configs/train/pretrain_sim.yaml names only what differs; the `train` group is typed by this class)."""

    steps: int = 4500
    batch_size: int = 32
    num_frames: int = 4  # clip length in frames (2 tubelets at tubelet 2)
    frame_step: int = 1  # 1 = consecutive frames at the dataset rate (4 fps)
    image_prob: float = 0.25  # share of still-image clips (one frame repeated)
    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.35)
    lr: float = 1e-3
    start_lr: float = 1e-4
    final_lr: float = 1e-5
    warmup_steps: int = 250
    weight_decay: float = 0.04
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    ema: tuple[float, float] = (0.996, 1.0)  # target-encoder momentum, ramped linearly over the run
    target: str = "ema"  # "ema": V-JEPA's EMA target encoder; "sigreg": LeJEPA, the encoder's own features + SIGReg
    sigreg_weight: float = 0.05  # target="sigreg": weight of SIGReg on the target features
    # Mask groups (each clip is trained on every group); blocks span the whole clip in time.
    masks: tuple[BlockMaskSpec, ...] = (
        BlockMaskSpec(num_blocks=8, spatial_scale=(0.15, 0.15)),
        BlockMaskSpec(num_blocks=2, spatial_scale=(0.7, 0.7)),
    )
    seed: int = 0


def pretrain_config(train: dict, seed: int) -> PretrainConfig:
    """The `train` config group (a plain dict) -> PretrainConfig: mask specs and pairs become tuples."""
    t = dict(train)
    masks = tuple(BlockMaskSpec(int(m["num_blocks"]), tuple(m["spatial_scale"]), tuple(m["aspect_ratio"]),
                                tuple(m["temporal_scale"])) for m in t.pop("masks"))
    tuples = {k: tuple(t[k]) for k in ("crop_scale", "crop_ratio", "betas", "ema")}
    return PretrainConfig(**{**t, **tuples}, masks=masks, seed=int(seed))


class Pretrainer:
    """Context encoder, target encoder, masked predictor and their optimiser; one ``step`` each call.

    target="ema" (V-JEPA): the target is an EMA copy of the encoder, without gradients, its features
    layer-normed. target="sigreg" (LeJEPA style): the target is the encoder itself, gradients flow into
    both sides, and SIGReg (lewm/sigreg.py) on the target features is what keeps them from collapsing."""

    def __init__(self, encoder: VisionTransformer, predictor: MaskedPredictor, cfg: PretrainConfig,
                 device: torch.device | str = "cpu"):
        import copy

        if cfg.target not in ("ema", "sigreg"):
            raise ValueError(f"train.target must be ema or sigreg, got {cfg.target!r}")
        self.cfg = cfg
        self.device = torch.device(device)
        self.encoder = encoder.to(self.device).train()
        self.target = self.encoder if cfg.target == "sigreg" else \
            copy.deepcopy(encoder).to(self.device).eval().requires_grad_(False)
        self.predictor = predictor.to(self.device).train()
        self.optimizer = torch.optim.AdamW(
            param_groups([self.encoder, self.predictor], cfg.weight_decay), lr=cfg.lr, betas=cfg.betas
        )
        self.step_count = 0
        self.train_time_s = 0.0  # wall time spent in training steps, summed over resumed runs
        self.generator = torch.Generator().manual_seed(cfg.seed)  # data, masks, augmentation

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def lr_at(self, step: int) -> float:
        c = self.cfg
        return warmup_cosine(step, c.steps, c.warmup_steps, c.start_lr, c.lr, c.final_lr)

    def momentum_at(self, step: int) -> float:
        return ema_momentum(step, self.cfg.steps, *self.cfg.ema)

    def loss(self, x: torch.Tensor, masks: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, dict]:
        """x: normalised clips [B, 3, T, S, S]; masks: per group (context [B, Kc], target [B, Kt])."""
        grid = self.encoder.grid(*x.shape[2:])
        extra = {}
        if self.cfg.target == "sigreg":
            with self._autocast():
                h = self.target(x).float()  # [B, N, D], with gradients: no stop-gradient
            extra["sigreg"] = sigreg(h, directions=random_directions(h.shape[-1], 256, self.generator).to(h.device))
        else:
            with torch.no_grad(), self._autocast():
                h = self.target(x)  # [B, N, D]
                h = F.layer_norm(h.float(), (h.shape[-1],))  # targets: layer-normed, no affine
        losses = []
        with self._autocast():
            for ctx_idx, tgt_idx in masks:
                z = self.encoder(x, keep=ctx_idx)  # [B, Kc, D]
                pred = self.predictor(z, ctx_idx, tgt_idx, grid)  # [B, Kt, D]
                tgt = torch.gather(h, 1, tgt_idx.unsqueeze(-1).expand(-1, -1, h.shape[-1]))  # [B, Kt, D]
                losses.append((pred.float() - tgt).abs().mean())
        # collapse monitor: spread of target features across tokens (0 = every token identical)
        spread = h.detach().flatten(0, 1).std(dim=0).mean().item()
        loss = torch.stack(losses).mean()
        info = {"target_spread": spread, "mask_ratio": masks[0][1].shape[1] / h.shape[1]}
        if extra:
            loss = loss + self.cfg.sigreg_weight * extra["sigreg"]
            info["sigreg"] = extra["sigreg"].item()
        return loss, info

    def sample_masks(self, batch: int, grid: tuple[int, int, int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [tuple(t.to(self.device) for t in sample_batch_masks(batch, grid, spec, self.generator))
                for spec in self.cfg.masks]

    def step(self, clips_uint8: torch.Tensor) -> dict:
        """One optimisation step on uint8 clips [B, T, S, S, 3] (augmented here). Returns metrics."""
        c = self.cfg
        lr, m = self.lr_at(self.step_count), self.momentum_at(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = augment(clips_uint8, self.generator, c.crop_scale, c.crop_ratio).to(self.device, non_blocking=True)
        masks = self.sample_masks(x.shape[0], self.encoder.grid(*x.shape[2:]))
        loss, info = self.loss(x, masks)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for grp in self.optimizer.param_groups for p in grp["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, c.grad_clip) if c.grad_clip else torch.tensor(0.0)
        self.optimizer.step()
        if self.target is not self.encoder:  # EMA (target="ema"): target <- m * target + (1 - m) * encoder
            with torch.no_grad():
                tp, sp = list(self.target.parameters()), list(self.encoder.parameters())
                torch._foreach_mul_(tp, m)
                torch._foreach_add_(tp, sp, alpha=1.0 - m)
        self.step_count += 1
        return {"loss": loss.item(), "lr": lr, "momentum": m, "grad_norm": float(grad_norm), **info}

    # -- resume state ------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "encoder": self.encoder.state_dict(),
            "target_encoder": self.target.state_dict(),
            "predictor": self.predictor.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step_count,
            "train_time_s": self.train_time_s,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "recipe": {"train": asdict(self.cfg)},
        }

    def load_state_dict(self, state: dict) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.target.load_state_dict(state["target_encoder"])
        self.predictor.load_state_dict(state["predictor"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count = int(state["step"])
        self.train_time_s = float(state.get("train_time_s", 0.0))
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])


# ----------------------------------------------------------------------------- the loop


def build_pretrainer(encoder_cfg: dict, predictor_cfg: dict, cfg: PretrainConfig, device="cpu") -> Pretrainer:
    """encoder_cfg: {name, img_size, patch_size, tubelet_size}; predictor_cfg: {predictor_embed_dim, depth,
    num_heads, mlp_ratio}. Weights are initialised from ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    enc = build_encoder(encoder_cfg["name"], patch_size=int(encoder_cfg["patch_size"]),
                        tubelet_size=int(encoder_cfg["tubelet_size"]), img_size=int(encoder_cfg["img_size"]))
    pred = MaskedPredictor(enc.embed_dim, **{k: predictor_cfg[k] for k in
                                              ("predictor_embed_dim", "depth", "num_heads", "mlp_ratio")})
    return Pretrainer(enc, pred, cfg, device)


def pretrain(
    trainer: Pretrainer,
    memory: ClipMemory,
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    checkpoint_every: int = 200,
    log_every: int = 10,
    max_steps_this_call: int | None = None,
    progress: bool = True,
    extra_meta: dict | None = None,
    export_dtype: torch.dtype = torch.float32,
) -> dict:
    """Train to ``trainer.cfg.steps``, resuming from ``run_dir/state.pt`` if present.

    Writes ``run_dir/state.pt`` (atomic, every ``checkpoint_every`` steps and on exit, SIGTERM
    included), ``run_dir/log.jsonl`` (one line per ``log_every`` steps) and, when the run is
    complete, the EMA (target) encoder to ``out`` via ``checkpoints.save_module`` (stored as
    ``export_dtype``; float16 halves the file, and users cast to their compute dtype on load).
    ``max_steps_this_call`` stops early (for tests and throughput checks). Returns a summary.
    """
    cfg = trainer.cfg
    starts = memory.clip_starts(cfg.num_frames, cfg.frame_step)
    if starts.numel() == 0:
        log.warning("no episode is long enough for a %d-frame clip: training on still images only", cfg.num_frames)

    def next_batch() -> torch.Tensor:
        return sample_clips(memory, starts, cfg.batch_size, cfg.num_frames, cfg.frame_step, cfg.image_prob,
                            trainer.generator)

    summary = run_steps(trainer, next_batch, run_dir, steps=cfg.steps, batch_size=cfg.batch_size, desc="pretrain",
                        checkpoint_every=checkpoint_every, log_every=log_every,
                        max_steps_this_call=max_steps_this_call, progress=progress)
    if summary["complete"] and out is not None:
        rows = log_rows(run_dir)
        final = [r["loss"] for r in rows[-10:]]
        summary["final_loss"] = float(np.mean(final)) if final else None
        summary["final_target_spread"] = rows[-1].get("target_spread") if rows else None
        objective = "masked latent prediction of its own features + SIGReg (LeJEPA style, no EMA)" \
            if cfg.target == "sigreg" else "V-JEPA masked latent prediction (EMA target)"
        meta = {"trained_by": "pretrain-encoder", "objective": objective,
                "steps": cfg.steps, "final_loss": summary["final_loss"], "train_time_s": summary["train_time_s"],
                **(extra_meta or {})}
        export_encoder(trainer.target, out, meta, export_dtype)
        summary["out"] = str(out)
    return summary


def pretrain_from_dataset(
    data: str | os.PathLike,
    camera: str,
    encoder_cfg: dict,
    mask_predictor_cfg: dict,
    cfg: PretrainConfig,
    *,
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    val_fraction: float,
    checkpoint_every: int,
    log_every: int,
    export_dtype: str,
    device: str | torch.device | None = None,
    threads: int | None = None,
    max_steps_this_call: int | None = None,
    progress: bool = True,
    config: dict | None = None,
) -> dict:
    """pretrain-encoder: decode ``camera`` of the training episodes of ``data`` (the held-out split, seeded
    by ``cfg.seed``, is never trained on), build the ``Pretrainer`` and ``pretrain`` it (``export_dtype``: a
    torch dtype name). ``config``, the command's whole config, goes into the encoder's metadata. Returns
    ``pretrain``'s summary with the split's counts."""
    from vjepa_planning.worldmodel.data.clips import load_training_clips
    from vjepa_planning.worldmodel.train import resolve_device  # lazily: worldmodel.train imports this module

    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(device)
    clips = load_training_clips(data, camera, int(encoder_cfg["img_size"]), val_fraction, cfg.seed, progress=progress)
    trainer = build_pretrainer(encoder_cfg, mask_predictor_cfg, cfg, device)
    summary = pretrain(trainer, clips.train, run_dir, out, checkpoint_every=int(checkpoint_every),
                       log_every=int(log_every), max_steps_this_call=max_steps_this_call, progress=progress,
                       extra_meta={"data": clips.meta(config)}, export_dtype=getattr(torch, export_dtype))
    summary.update(clips.counts())
    return summary


def export_encoder(encoder: VisionTransformer, out: str | os.PathLike, extra: dict,
                   dtype: torch.dtype = torch.float32) -> None:
    """Atomic ``checkpoints.save_module`` of a CPU copy in ``dtype``."""
    import copy

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    enc = copy.deepcopy(encoder).to(device="cpu", dtype=dtype)
    extra = {**extra, "stored_dtype": str(dtype).removeprefix("torch.")}
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    checkpoints.save_module(enc, tmp, extra=extra)
    os.replace(tmp, out)
