"""V-JEPA 2 video encoder: a ViT with a Conv3d tubelet patch embedding and 3D RoPE.

Read top to bottom: the size registry, then the modules in dependency order
(patch embedding -> MLP -> attention -> block -> VisionTransformer), then
``build_encoder``. Parameter names follow the public V-JEPA 2 checkpoints
(``patch_embed.proj``, ``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``,
``norm``) so official weights load without renaming (see checkpoints.py).

Tokens are in raster order over the (time / tubelet, height / patch, width / patch)
grid, time-major. There is no absolute position embedding: every attention layer
rotates q and k with the 3D RoPE of rope.py at integer grid positions.

The attention / MLP / block modules here are shared with the AC predictor
(predictor.py); ``Attention`` therefore also accepts a K/V prefix (a cache).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vjepa_planning.worldmodel.attention import KV, shared_prefix_attention
from vjepa_planning.worldmodel.rope import apply_rope, grid_positions, rope_tables

# ----------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class ViTSize:
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0


VIT_SIZES: dict[str, ViTSize] = {
    # test / CPU-pretraining sizes
    "vit_micro": ViTSize(embed_dim=64, depth=2, num_heads=2),
    "vit_mini": ViTSize(embed_dim=192, depth=6, num_heads=3),
    "vit_tiny": ViTSize(embed_dim=192, depth=12, num_heads=3),
    "vit_small": ViTSize(embed_dim=384, depth=12, num_heads=6),
    "vit_base": ViTSize(embed_dim=768, depth=12, num_heads=12),
    # the released V-JEPA 2 encoders
    "vit_large": ViTSize(embed_dim=1024, depth=24, num_heads=16),
    "vit_huge": ViTSize(embed_dim=1280, depth=32, num_heads=16),
    "vit_giant": ViTSize(embed_dim=1408, depth=40, num_heads=22, mlp_ratio=48 / 11),
}

# ----------------------------------------------------------------------------- modules


class PatchEmbed3D(nn.Module):
    """Non-overlapping (tubelet x patch x patch) Conv3d: [B, C, T, H, W] -> [B, N, D]."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, tubelet_size: int):
        super().__init__()
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # [B, D, T/t, H/p, W/p]
        return x.flatten(2).transpose(1, 2)  # [B, N, D], N = (T/t)(H/p)(W/p), raster order


class MLP(nn.Module):
    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention with RoPE on q and k (fused ``qkv`` projection).

    ``kv_prefix`` (k, v) of earlier tokens, batch 1 or B, is prepended to this call's
    keys / values (a batch-1 prefix is expanded, never recomputed). Returns the output
    and the full (prefix + new) keys / values so callers can keep them as a cache.
    ``forward_shared`` is the planning form: a batch-1 prefix is attended without copying it
    (attention.shared_prefix_attention) and only the candidates' own keys are returned.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        kv_prefix: KV | None = None,
    ) -> tuple[torch.Tensor, KV]:
        B, N, C = x.shape
        q, k, v = self._qkv(x, cos, sin)  # each [B, h, N, hd]
        if kv_prefix is not None:
            pk, pv = kv_prefix  # [1 or B, h, L, hd]
            k = torch.cat([pk.expand(B, -1, -1, -1), k], dim=2)  # [B, h, L + N, hd]
            v = torch.cat([pv.expand(B, -1, -1, -1), v], dim=2)  # [B, h, L + N, hd]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # [B, h, N, hd]
        y = y.transpose(1, 2).reshape(B, N, C)  # [B, N, h * hd]
        return self.proj(y), (k, v)

    def forward_shared(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, prefix: KV | None, own: KV | None
    ) -> tuple[torch.Tensor, KV]:
        """x [B, N, C] attends to ``prefix`` (batch 1 or B; never copied), then ``own`` (this batch's
        earlier keys / values [B, h, m, hd] or None), then itself. Returns the output and own + new keys."""
        B, N, C = x.shape
        q, k, v = self._qkv(x, cos, sin)  # each [B, h, N, hd]
        if own is not None:
            k, v = torch.cat([own[0], k], dim=2), torch.cat([own[1], v], dim=2)  # [B, h, m + N, hd]
        y = shared_prefix_attention(q, prefix, (k, v))  # [B, h, N, hd]
        y = y.transpose(1, 2).reshape(B, N, C)  # [B, N, h * hd]
        return self.proj(y), (k, v)

    def _qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim))  # [B, N, 3, h, hd]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, h, N, hd]
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)); x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, norm_eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        kv_prefix: KV | None = None,
    ) -> tuple[torch.Tensor, KV]:
        y, kv = self.attn(self.norm1(x), cos, sin, attn_mask=attn_mask, kv_prefix=kv_prefix)
        return self._feed_forward(x + y), kv

    def forward_shared(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, prefix: KV | None, own: KV | None
    ) -> tuple[torch.Tensor, KV]:
        """``forward`` for planning: see ``Attention.forward_shared``."""
        y, kv = self.attn.forward_shared(self.norm1(x), cos, sin, prefix, own)
        return self._feed_forward(x + y), kv

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm2(x))


def init_vit_weights(module: nn.Module, blocks: nn.ModuleList, std: float = 0.02) -> None:
    """Truncated-normal init of linear / conv weights, zero biases, unit LayerNorms, and the
    residual-branch output projections of block i (1-based) scaled by 1 / sqrt(2 i)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        for i, blk in enumerate(blocks, start=1):
            blk.attn.proj.weight.div_(math.sqrt(2.0 * i))
            blk.mlp.fc2.weight.div_(math.sqrt(2.0 * i))


class VisionTransformer(nn.Module):
    """V-JEPA 2 encoder. ``forward(x [B, C, T, H, W]) -> [B, N, D]`` patch features
    after the final LayerNorm (``norm``), N = (T / tubelet) (H / patch) (W / patch).

    ``img_size`` is the input side the weights were trained for (what preprocessing
    should produce); any T, H, W that are multiples of tubelet / patch are accepted.
    """

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        patch_size: int = 16,
        tubelet_size: int = 2,
        in_chans: int = 3,
        img_size: int = 256,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        self.arch = dict(
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            patch_size=patch_size,
            tubelet_size=tubelet_size,
            in_chans=in_chans,
            img_size=img_size,
            qkv_bias=qkv_bias,
            norm_eps=norm_eps,
        )  # constructor args: written into our safetensors files so they are self-describing
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.in_chans = in_chans
        self.img_size = img_size
        self.patch_embed = PatchEmbed3D(in_chans, embed_dim, patch_size, tubelet_size)
        self.blocks = nn.ModuleList(
            [Block(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, norm_eps=norm_eps) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        init_vit_weights(self, self.blocks)

    def grid(self, t: int, h: int, w: int) -> tuple[int, int, int]:
        """Token grid (time, height, width) for an input of t frames of h x w pixels."""
        return t // self.tubelet_size, h // self.patch_size, w // self.patch_size

    @property
    def tokens_per_frame(self) -> int:
        """Patch tokens of one tubelet at the trained input size."""
        return (self.img_size // self.patch_size) ** 2

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 5 or x.shape[1] != self.in_chans:
            raise ValueError(f"encoder input must be [B, {self.in_chans}, T, H, W]; got shape {tuple(x.shape)}")
        _, _, t, h, w = x.shape
        if t % self.tubelet_size or h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f"encoder input [B, C, T, H, W] = {tuple(x.shape)}: T must be a multiple of tubelet_size "
                f"{self.tubelet_size} and H, W multiples of patch_size {self.patch_size}"
            )

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B, C, T, H, W] float. keep: optional [B, K] indices of the tokens to keep
        (masked-latent pretraining); RoPE then uses each kept token's own grid position.
        Returns [B, N, D] (or [B, K, D] with ``keep``)."""
        self._check_input(x)
        gt, gh, gw = self.grid(*x.shape[2:])
        x = self.patch_embed(x.to(self.patch_embed.proj.weight.dtype))  # [B, N, D]
        pos_t, pos_h, pos_w = grid_positions(gt, gh, gw, device=x.device)  # each [N]
        if keep is not None:
            x = torch.gather(x, 1, keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # [B, K, D]
            pos_t, pos_h, pos_w = (p[keep].unsqueeze(1) for p in (pos_t, pos_h, pos_w))  # each [B, 1, K]
        cos, sin = rope_tables(pos_t, pos_h, pos_w, self.embed_dim // self.num_heads, x.dtype)  # [(B, 1,) N, hd]
        for blk in self.blocks:
            x, _ = blk(x, cos, sin)
        return self.norm(x)


def build_encoder(
    name: str,
    *,
    patch_size: int = 16,
    tubelet_size: int = 2,
    img_size: int = 256,
    in_chans: int = 3,
) -> VisionTransformer:
    """A registry size with the given input geometry, e.g. ``build_encoder("vit_giant")`` or
    ``build_encoder("vit_mini", patch_size=8, img_size=64)``. Use ``with torch.device("meta"):``
    to build a large one without allocating its weights."""
    if name not in VIT_SIZES:
        raise KeyError(f"unknown encoder size {name!r}; known: {sorted(VIT_SIZES)}")
    return VisionTransformer(
        **asdict(VIT_SIZES[name]),
        patch_size=patch_size,
        tubelet_size=tubelet_size,
        img_size=img_size,
        in_chans=in_chans,
    )
