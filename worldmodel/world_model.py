"""Frozen encoder + AC predictor behind the planner protocol (protocol.WorldModel).

    wm = VJEPAWorldModel.from_safetensors("enc.safetensors", "pred.safetensors", device="cpu")
    z = wm.encode(frame)                       # uint8 [H, W, 3] -> [1, N, D]
    z_hat = wm.rollout(z, state, actions)      # [1, N, D], [1, 7], [B, H, 7] -> [B, H, N, D]

Both verbs return layer-normed (no affine) embeddings, as the predictor was trained on.
Everything runs under ``torch.inference_mode``; weights are frozen and cast to ``dtype``
(bfloat16 is the fast choice on GPUs and on CPUs with AVX512-BF16 / AMX). With ``compile=True``
the rollout's steps run ``torch.compile``d (compiled_step.py); ``warm_up`` compiles a planner's
shapes before the first plan.
"""

from __future__ import annotations

import logging
import os
import time

import torch
import torch.nn as nn

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.encoder import VisionTransformer
from vjepa_planning.worldmodel.predictor import ACPredictor, RolloutContext
from vjepa_planning.worldmodel.preprocess import IMAGENET_MEAN, IMAGENET_STD, FrameTokenEncoder, Interp
from vjepa_planning.worldmodel.protocol import FrameEncoder, Frames
from vjepa_planning.worldmodel.readout import GripperReadout

log = logging.getLogger(__name__)


def _freeze(module: nn.Module, device, dtype) -> nn.Module:
    module = module.to(device=device, dtype=dtype).eval()
    module.requires_grad_(False)
    return module


class VJEPAFrameEncoder(FrameTokenEncoder):
    """A V-JEPA 2 ViT as a FrameEncoder: each uint8 image -> preprocess (centre crop, resize to
    ``img_size``, ImageNet normalisation, repeated to one tubelet) -> patch features [N, D]."""

    def __init__(
        self,
        encoder: VisionTransformer,
        *,
        img_size: int | None = None,
        interpolation: Interp = "bilinear",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        normalize: bool = True,
        batch_size: int = 32,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(img_size or encoder.img_size, interpolation=interpolation, mean=mean, std=std, normalize=normalize,
                         batch_size=batch_size, device=device, dtype=dtype)
        self.encoder = _freeze(encoder, device, dtype)
        self.tubelet_size = encoder.tubelet_size

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # [m, 3, tubelet, S, S] -> [m, N, D]


class VJEPAWorldModel(nn.Module):
    """protocol.WorldModel: ``encode`` (any FrameEncoder) + ``rollout`` (ACPredictor, KV-cached)."""

    def __init__(
        self,
        encoder: FrameEncoder,
        predictor: ACPredictor,
        *,
        normalize_reps: bool = True,
        max_batch: int | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        compile: bool = False,
        readout: GripperReadout | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.predictor = _freeze(predictor, device, dtype)
        self.readout = None if readout is None else _freeze(readout, device, torch.float32)  # small: float32 everywhere
        self.normalize_reps = normalize_reps
        self.max_batch = max_batch  # split candidate batches larger than this (bounds K/V cache memory)
        self.device, self.dtype = torch.device(device), dtype
        if compile:
            self.predictor.compile_rollout(log.info)
        else:
            self.predictor.compiled_step = None  # a module compiled by an earlier world model runs eagerly here

    def encode(self, frames: Frames) -> torch.Tensor:
        return self.encoder.encode(frames)

    @torch.inference_mode()
    def gripper_closed(self, frames: Frames) -> torch.Tensor | None:
        """protocol.ReadsGripper: uint8 [H, W, 3] | [B, H, W, 3] -> [B] probability that the hand is closed
        (None without a readout)."""
        return None if self.readout is None else self.readout.read(frames)

    @torch.inference_mode()
    def rollout_context(
        self, z: torch.Tensor, state: torch.Tensor, *, past_actions: torch.Tensor | None = None
    ) -> RolloutContext:
        """The part of a rollout every candidate shares, computed once: z [1, N, D] (or [1, T0, N, D]
        with past_actions [1, T0 - 1, 7]), state [1, 7] (or [1, T0, 7]). Pass it to ``rollout_from``."""
        if any(t is not None and t.shape[0] != 1 for t in (z, state, past_actions)):
            raise ValueError("rollout_context takes one observation (batch 1); use rollout() for per-candidate contexts")
        z = z.to(self.device, self.dtype)
        state = state.to(self.device, torch.float32)
        past_actions = None if past_actions is None else past_actions.to(self.device, torch.float32)
        return self.predictor.rollout_context(z, state, past_actions=past_actions)

    @torch.inference_mode()
    def rollout_from(self, context: RolloutContext, actions: torch.Tensor) -> torch.Tensor:
        """actions [B, H, 7] from a ``rollout_context`` -> [B, H, N, D] (split into ``max_batch`` chunks)."""
        actions = actions.to(self.device, torch.float32)
        step = self.max_batch or actions.shape[0]
        chunks = [
            self.predictor.rollout_from(context, actions[i : i + step], normalize_reps=self.normalize_reps)
            for i in range(0, actions.shape[0], step)
        ]
        return torch.cat(chunks)  # [B, H, N, D]

    @torch.inference_mode()
    def rollout(
        self,
        z: torch.Tensor,
        state: torch.Tensor,
        actions: torch.Tensor,
        *,
        past_actions: torch.Tensor | None = None,
        full_recompute: bool = False,
    ) -> torch.Tensor:
        """z [1 or B, N, D] (or [1 or B, T0, N, D] with history + past_actions [.., T0 - 1, 7]),
        state [1 or B, 7] (or [.., T0, 7]), actions [B, H, 7] -> [B, H, N, D]."""
        shared = all(t is None or t.shape[0] == 1 for t in (z, state, past_actions))
        if shared and not full_recompute:
            return self.rollout_from(self.rollout_context(z, state, past_actions=past_actions), actions)
        z = z.to(self.device, self.dtype)
        state, actions = state.to(self.device, torch.float32), actions.to(self.device, torch.float32)
        past_actions = None if past_actions is None else past_actions.to(self.device, torch.float32)
        fn = self.predictor.rollout_full_recompute if full_recompute else self.predictor.rollout
        B = actions.shape[0]
        step = self.max_batch or B

        def part(t: torch.Tensor | None, sl: slice) -> torch.Tensor | None:
            return t if t is None or t.shape[0] == 1 else t[sl]  # batch-1 inputs are shared by every chunk

        chunks = []
        for i in range(0, B, step):
            sl = slice(i, i + step)
            chunks.append(
                fn(
                    part(z, sl),
                    part(state, sl),
                    actions[sl],
                    past_actions=part(past_actions, sl),
                    normalize_reps=self.normalize_reps,
                )
            )
        return torch.cat(chunks)  # [B, H, N, D]

    def warm_up(self, batch_sizes: list[int], horizon: int, context_frames: int) -> float:
        """Compile the rollout (if ``compile``) for the shapes a planner will use, now rather than in its first
        plan. Only shapes prepared here run compiled: any other (e.g. an episode's first steps, with fewer
        context frames) runs eagerly instead of stopping a control loop to compile. Returns the seconds spent
        (0 if not compiled)."""
        step = self.predictor.compiled_step
        if step is None:
            return 0.0
        t0 = time.perf_counter()
        p, T0 = self.predictor, context_frames
        z = torch.zeros(1, T0, p.num_patches, p.embed_dim, device=self.device)  # [1, T0, N, D]
        state = torch.zeros(1, T0, p.action_dim, device=self.device)  # [1, T0, 7]
        past = torch.zeros(1, T0 - 1, p.action_dim, device=self.device) if T0 > 1 else None
        context = self.rollout_context(z if T0 > 1 else z[:, 0], state if T0 > 1 else state[:, 0], past_actions=past)

        sizes = sorted(set(batch_sizes), reverse=True)  # the largest first: the most work per graph

        def rollouts():
            for b in sizes:
                self.rollout_from(context, torch.zeros(b, horizon, p.action_dim, device=self.device))

        step.prepare(rollouts, dynamic_batch=len(sizes) > 1)
        return time.perf_counter() - t0

    def rollout_differentiable(
        self, z: torch.Tensor, state: torch.Tensor, actions: torch.Tensor, *, past_actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``rollout`` with autograd from the output back to ``actions`` (the planner's gradient refinement);
        the weights stay frozen. Inputs made under inference mode are copied into ordinary tensors first."""
        with torch.inference_mode(False), torch.enable_grad():
            z = z.to(self.device, self.dtype).clone()
            state = state.to(self.device, torch.float32).clone()
            past_actions = None if past_actions is None else past_actions.to(self.device, torch.float32).clone()
            return self.predictor.rollout(
                z, state, actions.to(self.device), past_actions=past_actions, normalize_reps=self.normalize_reps
            )

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_modules(
        cls, encoder: VisionTransformer, predictor: ACPredictor, *, device="cpu", dtype=torch.float32, **kw
    ) -> VJEPAWorldModel:
        return cls(VJEPAFrameEncoder(encoder, device=device, dtype=dtype), predictor, device=device, dtype=dtype, **kw)

    @classmethod
    def from_safetensors(
        cls,
        encoder_path: str | os.PathLike,
        predictor_path: str | os.PathLike,
        *,
        readout_path: str | os.PathLike | None = None,
        device="cpu",
        dtype=torch.float32,
        **kw,
    ) -> VJEPAWorldModel:
        """From files written by ``checkpoints.save_module`` (the gripper readout optional); refuses a predictor
        post-trained on another encoder."""
        enc = checkpoints.load_module(encoder_path, kind="encoder")
        pred = checkpoints.load_module(predictor_path, kind="predictor")
        check_encoder_pairing(enc, encoder_path, predictor_path)
        if readout_path is not None:
            kw["readout"] = checkpoints.load_module(readout_path, kind="readout")
        return cls.from_modules(enc, pred, device=device, dtype=dtype, **kw)

    @classmethod
    def from_official(
        cls,
        path: str | os.PathLike,
        *,
        img_size: int = 256,
        which: str = "encoder",
        device="cpu",
        dtype=torch.float32,
        **kw,
    ) -> VJEPAWorldModel:
        """From an official V-JEPA 2-AC ``.pt`` (e.g. the ViT-g 2-AC file: ``encoder`` + ``predictor``)."""
        ckpt = checkpoints.read_official_checkpoint(path)
        enc = checkpoints.load_official_encoder(ckpt, which=which, img_size=img_size)
        grid = img_size // enc.patch_size
        pred = checkpoints.load_official_predictor(ckpt, grid_size=grid)
        return cls.from_modules(enc, pred, device=device, dtype=dtype, **kw)


def check_encoder_pairing(encoder: VisionTransformer, encoder_path, predictor_path) -> None:
    """A predictor only means something on the features of the encoder it was post-trained on; two encoders of
    the same shape would load without complaint and plan on nonsense. post-train records the encoder's weights
    hash (float32, as it computed the features); files without one (older, or hand-made) are not checked."""
    extra = checkpoints.read_metadata(predictor_path)["extra"]
    trained_on = extra.get("encoder_weights_sha256")
    if trained_on is None:
        return
    given = checkpoints.module_sha256(encoder, float_dtype=torch.float32)
    if given != trained_on:
        raise ValueError(
            f"predictor {predictor_path} was post-trained on another encoder than {encoder_path} "
            f"(encoder weights sha256 {given[:12]}..., the predictor's records {trained_on[:12]}...); "
            f"pair it with the encoder it was trained with ({extra.get('encoder', 'see its model card')})"
        )
