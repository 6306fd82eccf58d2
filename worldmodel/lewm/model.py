"""LeWorldModel (LeWM, arXiv 2603.19312): encoder and action-conditioned predictor trained together from
pixels, one embedding vector per frame.

    frame [3, S, S] --ViT--> CLS [W_e] --projector (Linear, BatchNorm, GELU, Linear)--> z [D]
    z_0 .. z_t, a_0 .. a_t --causal transformer, AdaLN-zero on each step's action--> z_{t+1}

Sequence layout of the predictor: one token per time step, the embedding z_t; step t's action a_t
(taken after frame t) modulates every block at that token (adaptive LayerNorm: shift, scale and a
residual gate from the action, the gate initialised to zero so a new predictor starts as the identity
map of its input projection). Attention is causal in time with a temporal RoPE, so the output at step t
is the prediction of z_{t+1} from z_0..z_t and a_0..a_t.

Training (lewm/train.py) uses the prediction loss plus SIGReg on the embeddings (sigreg.py); there is
no EMA, no stop-gradient and no frozen part. Embeddings are not layer-normed: SIGReg keeps them near
an isotropic N(0, I), and the planner's L1 energy compares them directly.

``LeWMWorldModel`` is the planners' view (worldmodel/protocol.py): ``encode`` -> [B, 1, D] (one
"patch"), ``rollout`` / ``rollout_context`` + ``rollout_from`` -> [B, H, 1, D]. The history before the
last observed frame does not depend on the candidate actions; ``rollout_context`` runs it once (batch 1)
and keeps its keys / values, and each imagined step of every candidate then costs one token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vjepa_planning.worldmodel.encoder import KV, MLP, Attention, Block, init_vit_weights
from vjepa_planning.worldmodel.preprocess import encode_in_batches, preprocess_frames
from vjepa_planning.worldmodel.rope import rope_tables


def _rope_2d(gh: int, gw: int, head_dim: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos / sin [1 + gh * gw, head_dim]: the CLS token at the grid centre, patches at their cells."""
    cell = torch.arange(gh * gw, device=device)
    pos_h = torch.cat([torch.tensor([(gh - 1) / 2], device=device), (cell // gw).float()])  # [1 + N]
    pos_w = torch.cat([torch.tensor([(gw - 1) / 2], device=device), (cell % gw).float()])  # [1 + N]
    return rope_tables(torch.zeros_like(pos_h), pos_h, pos_w, head_dim, torch.float32)


class LeWMEncoder(nn.Module):
    """ViT over S x S frames -> CLS -> projector with BatchNorm -> z [B, D]."""

    def __init__(self, img_size: int, patch_size: int, width: int, depth: int, num_heads: int, embed_dim: int,
                 proj_hidden: int):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size, self.grid = img_size, patch_size, img_size // patch_size
        self.patch_embed = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.blocks = nn.ModuleList([Block(width, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.projector = nn.Sequential(
            nn.Linear(width, proj_hidden), nn.BatchNorm1d(proj_hidden), nn.GELU(), nn.Linear(proj_hidden, embed_dim)
        )
        init_vit_weights(self, self.blocks)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for layer in (self.projector[0], self.projector[3]):  # unit-scale embeddings from the start: SIGReg's
            nn.init.normal_(layer.weight, std=layer.in_features**-0.5)  # gradient vanishes near a collapsed point
        self.head_dim = width // num_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: normalised images [B, 3, S, S] -> embeddings [B, D]."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # [B, N, W]  (raster order)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)  # [B, 1 + N, W]
        cos, sin = (t.to(x.dtype) for t in _rope_2d(self.grid, self.grid, self.head_dim, x.device))  # [1 + N, hd]
        for blk in self.blocks:
            x, _ = blk(x, cos, sin)
        return self.projector(self.norm(x[:, 0]))  # [B, D]


MODULATIONS = ("per_block", "shared")


class AdaLNBlock(nn.Module):
    """Pre-norm block whose LayerNorms are modulated by a conditioning vector c (AdaLN-zero):
    x + g1 * attn(LN(x) * (1 + s1) + b1), then x + g2 * mlp(LN(x) * (1 + s2) + b2).

    modulation "per_block": the six vectors are this block's Linear(SiLU(c)), as in DiT. "shared"
    (adaLN-single, PixArt-alpha): they are one Linear(SiLU(c)) computed once for all blocks (``shared``)
    plus this block's learned offsets ``table``, which costs 6 W^2 per token once instead of per block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, modulation: str = "per_block"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio))
        if modulation == "per_block":
            self.modulation = nn.Linear(dim, 6 * dim)  # zero-initialised by the predictor
        else:
            self.table = nn.Parameter(torch.zeros(6 * dim))

    def forward(self, x, c, cos, sin, attn_mask=None, kv_prefix: KV | None = None,
                shared: torch.Tensor | None = None) -> tuple[torch.Tensor, KV]:
        """x [B, T, W], c [B, T, W] (or, shared modulation, ``shared`` [B, T, 6W]) -> ([B, T, W], this
        call's keys / values with the prefix)."""
        m = self.modulation(F.silu(c)) if shared is None else shared + self.table  # [B, T, 6W]
        b1, s1, g1, b2, s2, g2 = m.chunk(6, dim=-1)  # each [B, T, W]
        y, kv = self.attn(self.norm1(x) * (1 + s1) + b1, cos, sin, attn_mask=attn_mask, kv_prefix=kv_prefix)
        x = x + g1 * y
        x = x + g2 * self.mlp(self.norm2(x) * (1 + s2) + b2)
        return x, kv


class LeWMPredictor(nn.Module):
    """z [B, T, D] and actions [B, T, A] -> predictions of z_1 .. z_T [B, T, D] (causal in time).
    Actions are standardised with the training data's mean / std (buffers, saved with the weights)."""

    def __init__(self, embed_dim: int, width: int, depth: int, num_heads: int, action_dim: int = 7,
                 mlp_ratio: float = 4.0, modulation: str = "per_block"):
        super().__init__()
        if modulation not in MODULATIONS:
            raise ValueError(f"LeWM predictor: modulation {modulation!r} is not one of {MODULATIONS}")
        self.width, self.head_dim = width, width // num_heads
        self.input_proj = nn.Linear(embed_dim, width)
        self.action_encoder = nn.Sequential(nn.Linear(action_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList([AdaLNBlock(width, num_heads, mlp_ratio, modulation) for _ in range(depth)])
        self.shared_modulation = nn.Linear(width, 6 * width) if modulation == "shared" else None
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Linear(width, 2 * width)
        self.output_proj = nn.Linear(width, embed_dim)
        self.register_buffer("action_mean", torch.zeros(action_dim))
        self.register_buffer("action_std", torch.ones(action_dim))
        init_vit_weights(self, self.blocks)
        per_block = [b.modulation for b in self.blocks if hasattr(b, "modulation")]
        for m in [*per_block, self.shared_modulation, self.final_modulation]:
            if m is None:
                continue
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def _rope(self, t0: int, T: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        pos_t = torch.arange(t0, t0 + T, device=device, dtype=torch.float32)  # [T]
        zeros = torch.zeros_like(pos_t)
        return rope_tables(pos_t, zeros, zeros, self.head_dim, self.input_proj.weight.dtype)  # [T, hd] each

    def _cond(self, actions: torch.Tensor) -> torch.Tensor:
        a = (actions.float() - self.action_mean) / self.action_std  # [B, T, A]
        return self.action_encoder(a.to(self.input_proj.weight.dtype))  # [B, T, W]

    def _out(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.final_modulation(F.silu(c)).chunk(2, dim=-1)
        return self.output_proj(self.final_norm(x) * (1 + scale) + shift)  # [B, T, D]

    def forward(self, z: torch.Tensor, actions: torch.Tensor, t0: int = 0,
                prefix: list[KV] | None = None) -> tuple[torch.Tensor, list[KV]]:
        """z [B, T, D], actions [B, T, A] (after keys / values ``prefix`` of t0 earlier steps, batch 1 or B)
        -> (predictions [B, T, D], per-block keys / values including the prefix)."""
        x = self.input_proj(z.to(self.input_proj.weight.dtype))  # [B, T, W]
        c = self._cond(actions)  # [B, T, W]
        B, T = x.shape[0], x.shape[1]
        if c.shape[0] != B:
            x = x.expand(c.shape[0], -1, -1)
            B = c.shape[0]
        cos, sin = self._rope(t0, T, x.device)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril() if T > 1 else None  # [T, T]
        if mask is not None and prefix is not None:  # the new steps see every earlier step
            mask = torch.cat([mask.new_ones(T, t0), mask], dim=1)  # [T, t0 + T]
        shared = None if self.shared_modulation is None else self.shared_modulation(F.silu(c))  # [B, T, 6W]
        cache = []
        for i, blk in enumerate(self.blocks):
            x, kv = blk(x, c, cos, sin, attn_mask=mask, kv_prefix=None if prefix is None else prefix[i], shared=shared)
            cache.append(kv)
        return self._out(x, c), cache


@dataclass
class LeWMContext:
    """What every rollout from one observation shares: the last frame's embedding and the keys /
    values of the history before it (batch 1)."""

    z_last: torch.Tensor  # [1, D]
    t_last: int
    history: list[KV] | None


class LeWM(nn.Module):
    """Encoder + predictor, saved together (checkpoints kind ``lewm``)."""

    def __init__(self, img_size: int = 128, patch_size: int = 16, encoder_width: int = 128, encoder_depth: int = 4,
                 encoder_heads: int = 4, embed_dim: int = 192, proj_hidden: int = 512, predictor_width: int = 192,
                 predictor_depth: int = 6, predictor_heads: int = 4, action_dim: int = 7, mlp_ratio: float = 4.0,
                 modulation: str = "per_block"):
        super().__init__()
        self.arch = dict(img_size=img_size, patch_size=patch_size, encoder_width=encoder_width,
                         encoder_depth=encoder_depth, encoder_heads=encoder_heads, embed_dim=embed_dim,
                         proj_hidden=proj_hidden, predictor_width=predictor_width, predictor_depth=predictor_depth,
                         predictor_heads=predictor_heads, action_dim=action_dim, mlp_ratio=mlp_ratio,
                         modulation=modulation)
        self.img_size, self.embed_dim, self.action_dim = img_size, embed_dim, action_dim
        self.encoder = LeWMEncoder(img_size, patch_size, encoder_width, encoder_depth, encoder_heads, embed_dim,
                                   proj_hidden)
        self.predictor = LeWMPredictor(embed_dim, predictor_width, predictor_depth, predictor_heads, action_dim,
                                       mlp_ratio, modulation)

    def forward(self, x: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: normalised clips x [B, T, 3, S, S], actions [B, T, A] -> (embeddings z [B, T, D],
        predictions of z_1 .. z_{T-1} [B, T - 1, D] from z_0 .. z_{T-2} and a_0 .. a_{T-2})."""
        B, T = x.shape[:2]
        z = self.encoder(x.flatten(0, 1)).unflatten(0, (B, T))  # [B, T, D]
        pred, _ = self.predictor(z[:, :-1], actions[:, :-1])  # [B, T - 1, D]
        return z, pred


class LeWMWorldModel:
    """protocol.ContextRollout over a trained ``LeWM`` (frozen, eval mode): N = 1 token per frame."""

    def __init__(self, model: LeWM, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 batch_size: int = 64):
        self.model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
        self.device, self.dtype, self.batch_size = torch.device(device), dtype, batch_size

    @classmethod
    def from_safetensors(cls, path, **kw) -> LeWMWorldModel:
        from vjepa_planning.worldmodel import checkpoints

        return cls(checkpoints.load_module(path, kind="lewm"), **kw)

    @torch.inference_mode()
    def encode(self, frames) -> torch.Tensor:
        """uint8 [H, W, 3] -> [1, 1, D]; [B, H, W, 3] -> [B, 1, D]; [B, T, H, W, 3] -> [B, T, 1, D]."""
        def images(x):
            x = preprocess_frames(x, self.model.img_size, 1, dtype=self.dtype, device=self.device)[:, :, 0]
            return self.model.encoder(x)[:, None].float()  # [m, 1, D]

        return encode_in_batches(frames, self.batch_size, images)

    @torch.inference_mode()
    def rollout_context(self, z: torch.Tensor, state: torch.Tensor, *, past_actions: torch.Tensor | None = None):
        """z [1, 1, D] or [1, T0, 1, D] (+ past_actions [1, T0 - 1, 7]); the state is not used (pixels only)."""
        if z.shape[0] != 1:
            raise ValueError("rollout_context takes one observation (batch 1); use rollout() for per-candidate contexts")
        z = (z[:, None] if z.ndim == 3 else z)[:, :, 0].to(self.device, self.dtype)  # [1, T0, D]
        T0 = z.shape[1]
        if T0 > 1 and (past_actions is None or past_actions.shape[1] != T0 - 1):
            raise ValueError(f"rollout: {T0} context frames need past_actions [1, {T0 - 1}, 7]")
        history = None
        if T0 > 1:
            _, history = self.model.predictor(z[:, :-1], past_actions.to(self.device, torch.float32))
        return LeWMContext(z[:, -1], T0 - 1, history)

    @torch.inference_mode()
    def rollout_from(self, ctx: LeWMContext, actions: torch.Tensor) -> torch.Tensor:
        """actions [B, H, 7] -> imagined embeddings [B, H, 1, D], each step fed back as the next input."""
        actions = actions.to(self.device, torch.float32)
        B, H = actions.shape[:2]
        z_t, cache, preds = ctx.z_last.expand(B, -1)[:, None], ctx.history, []  # [B, 1, D]
        for h in range(H):
            z_t, cache = self.model.predictor(z_t, actions[:, h : h + 1], t0=ctx.t_last + h, prefix=cache)
            preds.append(z_t)
        return torch.cat(preds, dim=1)[:, :, None].float()  # [B, H, 1, D]

    @torch.inference_mode()
    def rollout(self, z, state, actions, *, past_actions=None, full_recompute: bool = False) -> torch.Tensor:
        """z [1 or B, 1, D] or [1 or B, T0, 1, D] (+ past_actions [1 or B, T0 - 1, 7]), actions [B, H, 7]
        -> [B, H, 1, D]. One shared observation goes through the cache; per-candidate observations, or
        ``full_recompute``, re-run the whole sequence at every imagined step (the reference the cache is
        tested and timed against)."""
        shared = z.shape[0] == 1 and (past_actions is None or past_actions.shape[0] == 1)
        if shared and not full_recompute:
            return self.rollout_from(self.rollout_context(z, state, past_actions=past_actions), actions)
        actions = actions.to(self.device, torch.float32)
        B, H = actions.shape[:2]
        seq = (z[:, None] if z.ndim == 3 else z)[:, :, 0].to(self.device, self.dtype).expand(B, -1, -1)  # [B, T0, D]
        past = torch.zeros(B, 0, actions.shape[-1], device=self.device) if past_actions is None else \
            past_actions.to(self.device, torch.float32).expand(B, -1, -1)  # [B, T0 - 1, A]
        preds = []
        for h in range(H):
            out, _ = self.model.predictor(seq, torch.cat([past, actions[:, : h + 1]], dim=1))  # [B, T0 + h, D]
            preds.append(out[:, -1])
            seq = torch.cat([seq, out[:, -1:]], dim=1)
        return torch.stack(preds, dim=1)[:, :, None].float()  # [B, H, 1, D]
