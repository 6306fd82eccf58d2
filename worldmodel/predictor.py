"""V-JEPA 2-AC action-conditioned predictor, with a KV-cached rollout for planning.

Sequence layout. For each time step t the predictor sees ``K + N`` tokens

    [a_t, s_t, (e_t), z_t patch_0 .. patch_{N-1}]          K = 2 (3 with extrinsics)

where a_t is the action taken *after* frame t, s_t the end-effector state at frame t,
e_t optional camera extrinsics and z_t the N = gh * gw patch embeddings of frame t
(layer-normed encoder output). Steps are concatenated in time order. Attention is
block-causal: every token of step t sees every token of steps <= t (including a_t,
so the patches of frame t already know the action about to be taken). The output
at the patch tokens of step t, after ``predictor_norm`` and ``predictor_proj``, is
the prediction of frame t + 1; action / state tokens are dropped.

Positions (3D RoPE, rope.py): a patch token of step t at grid cell (i, j) sits at
(t, i, j * gh / gw) -- upstream rescales the axes to the height grid -- and the K
conditioning tokens of step t sit at (t, 0, 0): rotating their height / width
chunks by angle 0 is the identity, which is exactly upstream's "rotate only the
temporal chunk of action tokens".

Parameter names match the official checkpoints: ``predictor_embed``, ``action_encoder``,
``state_encoder``, ``extrinsics_encoder``, ``predictor_blocks.{i}.*``, ``predictor_norm``,
``predictor_proj``. Upstream always creates ``extrinsics_encoder`` (Linear(action_dim - 1,
width)) even when unused, so it exists here by default too (strict loading).

Rollouts (planning). The official planner calls the predictor on the whole history at
every imagined step and feeds back ``layer_norm(prediction)`` (``normalize_reps``), with
the state advanced by ``integrate_state``. ``rollout_full_recompute`` does exactly that;
``rollout`` gives the same numbers with a KV cache: each step runs only its own K + N
tokens against cached keys / values of earlier steps (no mask is needed then: a new step
sees all of the past and all of itself).

What can be shared across B candidate action sequences: the context frame's tokens
attend to the *first planned action* (same step), so with a one-frame context nothing
past layer 0 is common to all candidates. History frames before it (``z`` with T0 > 1
frames and their executed ``past_actions``) are shared: ``rollout_context`` runs them
once with batch 1, and every ``rollout_from`` (one per planner iteration) attends to
those keys / values without copying them per candidate (attention.shared_prefix_attention:
all candidates' queries in one long attention against the batch-1 history, merged with
each candidate's attention to its own imagined steps). ``rollout_from`` runs its steps
through ``shared_step``, or through a ``torch.compile``d copy of it (``compile_rollout``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vjepa_planning.worldmodel.compiled_step import CompiledStep
from vjepa_planning.worldmodel.encoder import KV, Block, init_vit_weights
from vjepa_planning.worldmodel.rope import rope_tables
from vjepa_planning.worldmodel.state_math import integrate_state

# ----------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class PredictorSize:
    predictor_embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0


PREDICTOR_SIZES: dict[str, PredictorSize] = {
    "ac_micro": PredictorSize(predictor_embed_dim=64, depth=2, num_heads=2),
    "ac_small": PredictorSize(predictor_embed_dim=384, depth=6, num_heads=6),
    "ac_base": PredictorSize(predictor_embed_dim=768, depth=12, num_heads=12),
    "ac_official": PredictorSize(predictor_embed_dim=1024, depth=24, num_heads=16),  # V-JEPA 2-AC
}


@dataclass
class RolloutContext:
    """What every rollout from one observation shares (``ACPredictor.rollout_context``): the last
    observed frame and state and the keys / values of the history before it (batch 1 when the
    observation is). Read-only: any number of rollouts of any batch may start from it."""

    z_last: torch.Tensor  # [Bz, N, D]
    s_last: torch.Tensor  # [Bs, A]
    t_last: int  # step index of the last observed frame (T0 - 1)
    history: list[KV] | None  # per block, keys / values of steps 0 .. t_last - 1
    extrinsics: torch.Tensor | None = None  # [B?, A - 1]


def block_causal_mask(num_steps: int, tokens_per_step: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean [L, L] mask, L = num_steps * tokens_per_step, True where query step >= key step."""
    step = torch.arange(num_steps * tokens_per_step, device=device) // tokens_per_step  # [L]
    return step[:, None] >= step[None, :]  # [L, L]


def _as_batch(x: torch.Tensor, batch: int) -> torch.Tensor:
    return x if x.shape[0] == batch else x.expand(batch, *x.shape[1:])


# ----------------------------------------------------------------------------- model


class ACPredictor(nn.Module):
    """Action-conditioned predictor. ``embed_dim`` is the encoder width (1408 for ViT-g)."""

    def __init__(
        self,
        embed_dim: int,
        predictor_embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        grid_size: int | tuple[int, int] = 16,
        action_dim: int = 7,
        use_extrinsics: bool = False,
        extrinsics_encoder: bool = True,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        gh, gw = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
        if use_extrinsics and not extrinsics_encoder:
            raise ValueError("use_extrinsics=True needs extrinsics_encoder=True")
        self.arch = dict(
            embed_dim=embed_dim,
            predictor_embed_dim=predictor_embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            grid_size=[gh, gw],
            action_dim=action_dim,
            use_extrinsics=use_extrinsics,
            extrinsics_encoder=extrinsics_encoder,
            qkv_bias=qkv_bias,
            norm_eps=norm_eps,
        )  # constructor args: written into our safetensors files so they are self-describing
        self.embed_dim = embed_dim
        self.width = predictor_embed_dim
        self.head_dim = predictor_embed_dim // num_heads
        self.grid_h, self.grid_w = gh, gw
        self.num_patches = gh * gw
        self.action_dim = action_dim
        self.use_extrinsics = use_extrinsics
        self.cond_tokens = 3 if use_extrinsics else 2
        self.tokens_per_step = self.cond_tokens + self.num_patches

        self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim)
        self.action_encoder = nn.Linear(action_dim, predictor_embed_dim)
        self.state_encoder = nn.Linear(action_dim, predictor_embed_dim)
        self.extrinsics_encoder = nn.Linear(action_dim - 1, predictor_embed_dim) if extrinsics_encoder else None
        self.predictor_blocks = nn.ModuleList(
            [
                Block(predictor_embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, norm_eps=norm_eps)
                for _ in range(depth)
            ]
        )
        self.predictor_norm = nn.LayerNorm(predictor_embed_dim, eps=norm_eps)
        self.predictor_proj = nn.Linear(predictor_embed_dim, embed_dim)
        init_vit_weights(self, self.predictor_blocks)
        self.compiled_step = None  # set by compile_rollout

    # -- pieces shared by forward / step --------------------------------------------------

    def _rope(
        self, t0: int, num_steps: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """cos / sin [num_steps * S, head_dim] for steps t0 .. t0 + num_steps - 1 (S = tokens_per_step)."""
        K, N = self.cond_tokens, self.num_patches
        cell = torch.arange(N, device=device)
        zeros = torch.zeros(K, device=device)
        pos_h = torch.cat([zeros, (cell // self.grid_w).float()])  # [S]
        pos_w = torch.cat([zeros, (cell % self.grid_w).float() * (self.grid_h / self.grid_w)])  # [S]
        steps = torch.arange(t0, t0 + num_steps, device=device).float()  # [T]
        pos_t = steps.repeat_interleave(self.tokens_per_step)  # [T * S]
        return rope_tables(pos_t, pos_h.repeat(num_steps), pos_w.repeat(num_steps), self.head_dim, dtype)

    def _embed(
        self, z: torch.Tensor, actions: torch.Tensor, states: torch.Tensor, extrinsics: torch.Tensor | None
    ) -> torch.Tensor:
        """z [Bz, T, N, D], actions / states [B?, T, A], extrinsics [B?, T, A-1] -> tokens [B, T * S, W].
        Inputs with batch 1 are projected once and expanded."""
        dtype = self.predictor_embed.weight.dtype
        parts = [self.action_encoder(actions.to(dtype)), self.state_encoder(states.to(dtype))]  # each [B?, T, W]
        if self.use_extrinsics:
            if extrinsics is None:
                raise ValueError("this predictor uses extrinsics tokens: pass extrinsics [B, T, 6]")
            parts.append(self.extrinsics_encoder(extrinsics.to(dtype)))  # [B?, T, W]
        x = self.predictor_embed(z.to(dtype))  # [Bz, T, N, W]
        B = max(p.shape[0] for p in [x, *parts])
        tokens = [_as_batch(p, B).unsqueeze(2) for p in parts] + [_as_batch(x, B)]  # [B, T, 1, W] ... [B, T, N, W]
        x = torch.cat(tokens, dim=2)  # [B, T, S, W]
        return x.flatten(1, 2)  # [B, T * S, W]

    def _readout(self, x: torch.Tensor, num_steps: int) -> torch.Tensor:
        """tokens [B, T * S, W] -> predicted next-frame embeddings [B, T, N, D]."""
        x = x.view(x.shape[0], num_steps, self.tokens_per_step, self.width)  # [B, T, S, W]
        x = x[:, :, self.cond_tokens :]  # [B, T, N, W]  (action / state tokens dropped)
        return self.predictor_proj(self.predictor_norm(x))  # [B, T, N, D]

    def _check_frames(self, z: torch.Tensor, what: str) -> None:
        if z.shape[-2:] != (self.num_patches, self.embed_dim):
            raise ValueError(
                f"{what}: expected [..., {self.num_patches} patches, {self.embed_dim}] "
                f"(grid {self.grid_h}x{self.grid_w}); got shape {tuple(z.shape)}"
            )

    # -- teacher-forced forward (training; the reference for everything else) ---------------

    def forward(
        self,
        z: torch.Tensor,
        actions: torch.Tensor,
        states: torch.Tensor,
        extrinsics: torch.Tensor | None = None,
        t0: int = 0,
    ) -> torch.Tensor:
        """All T steps in one pass with the block-causal mask.

        z: [B, T, N, D] or the official flat layout [B, T * N, D]; actions, states: [B, T, A].
        Returns predictions of frames 1..T in the same layout as z ([B, T, N, D] or [B, T * N, D]).
        """
        flat = z.ndim == 3
        if flat:
            z = z.unflatten(1, (-1, self.num_patches))  # [B, T, N, D]
        self._check_frames(z, "predictor input z")
        T = z.shape[1]
        if actions.shape[1] != T or states.shape[1] != T:
            raise ValueError(
                f"need one action and one state per frame: z has {T} frames, "
                f"actions {tuple(actions.shape)}, states {tuple(states.shape)}"
            )
        x = self._embed(z, actions, states, extrinsics)  # [B, T * S, W]
        cos, sin = self._rope(t0, T, x.device, x.dtype)
        mask = block_causal_mask(T, self.tokens_per_step, x.device) if T > 1 else None
        for blk in self.predictor_blocks:
            x, _ = blk(x, cos, sin, attn_mask=mask)
        out = self._readout(x, T)  # [B, T, N, D]
        return out.flatten(1, 2) if flat else out

    # -- cached stepping ------------------------------------------------------------------

    def prefill(
        self,
        z: torch.Tensor,
        actions: torch.Tensor,
        states: torch.Tensor,
        extrinsics: torch.Tensor | None = None,
    ) -> list[KV]:
        """Keys / values of T known steps (z [B, T, N, D], actions / states [B, T, A]): the cache
        that ``step`` continues from at t = T. Batch 1 here is shared by any batch later."""
        self._check_frames(z, "prefill z")
        T = z.shape[1]
        x = self._embed(z, actions, states, extrinsics)  # [B, T * S, W]
        cos, sin = self._rope(0, T, x.device, x.dtype)
        mask = block_causal_mask(T, self.tokens_per_step, x.device) if T > 1 else None
        cache = []
        for blk in self.predictor_blocks:
            x, kv = blk(x, cos, sin, attn_mask=mask)
            cache.append(kv)  # each [B, h, T * S, hd]
        return cache

    def step(
        self,
        z_t: torch.Tensor,
        a_t: torch.Tensor,
        s_t: torch.Tensor,
        t: int,
        cache: list[KV] | None = None,
        extrinsics: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[KV]]:
        """One time step t given the cache of steps < t (None when t = 0).

        z_t [Bz, N, D], a_t / s_t [B?, A], extrinsics [B?, A-1]; batch-1 inputs and cache broadcast.
        Returns the prediction of frame t + 1 [B, N, D] and the cache extended by step t.
        """
        self._check_frames(z_t, "step z_t")
        e = None if extrinsics is None else extrinsics[:, None]
        x = self._embed(z_t[:, None], a_t[:, None], s_t[:, None], e)  # [B, S, W]
        cos, sin = self._rope(t, 1, x.device, x.dtype)  # [S, hd]
        new_cache = []
        for i, blk in enumerate(self.predictor_blocks):
            x, kv = blk(x, cos, sin, kv_prefix=None if cache is None else cache[i])  # no mask: sees all past + own step
            new_cache.append(kv)  # [B, h, (t + 1) * S, hd]
        return self._readout(x, 1)[:, 0], new_cache  # [B, N, D]

    def shared_step(
        self,
        z_t: torch.Tensor,
        a_t: torch.Tensor,
        s_t: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        history: list[KV] | None,
        own: list[KV] | None,
        extrinsics: torch.Tensor | None,
    ) -> tuple[torch.Tensor, list[KV]]:
        """``step`` for planning (inference only): attends to the shared ``history`` (batch 1 or B) without
        copying it, then to this batch's earlier imagined steps ``own`` (per block [B, h, m, hd], or None).
        cos / sin: the step's RoPE tables ``_rope(t, 1)``. Returns the prediction [B, N, D] and own + this step."""
        e = None if extrinsics is None else extrinsics[:, None]
        x = self._embed(z_t[:, None], a_t[:, None], s_t[:, None], e)  # [B, S, W]
        new_own = []
        for i, blk in enumerate(self.predictor_blocks):
            past = None if history is None else history[i]
            x, kv = blk.forward_shared(x, cos, sin, past, None if own is None else own[i])
            new_own.append(kv)  # [B, h, m + S, hd]
        return self._readout(x, 1)[:, 0], new_own  # [B, N, D]

    def compile_rollout(self, log=None) -> CompiledStep:
        """Run ``rollout_from``'s inference steps through ``torch.compile(shared_step)`` from now on, for the
        shapes ``.prepare``d (compiled_step.py; eager for others). The weights are frozen into the compiled
        code: call this after loading them, for inference only."""
        self.compiled_step = CompiledStep(self.shared_step, log)
        return self.compiled_step

    # -- rollouts (planning) -----------------------------------------------------------------

    def _check_actions(self, actions: torch.Tensor) -> None:
        if actions.ndim != 3 or actions.shape[-1] != self.action_dim:
            raise ValueError(f"rollout actions must be [B, H, {self.action_dim}]; got {tuple(actions.shape)}")

    def _rollout_inputs(self, z, states, past_actions):
        """Normalise rollout arguments: z [Bz, T0, N, D], states [Bs, T0, A], past [Bp, T0-1, A] | None."""
        self._check_frames(z, "rollout z")
        if z.ndim not in (3, 4):
            raise ValueError(f"rollout z must be [B, N, D] or [B, T0, N, D]; got {tuple(z.shape)}")
        if z.ndim == 3:
            z = z[:, None]  # [Bz, 1, N, D]
        if states.ndim == 2:
            states = states[:, None]  # [Bs, 1, A]
        T0 = z.shape[1]
        if states.shape[1] != T0:
            raise ValueError(f"rollout: z has {T0} context frames but states has shape {tuple(states.shape)}")
        if T0 > 1 and (past_actions is None or past_actions.shape[1] != T0 - 1):
            raise ValueError(f"rollout: {T0} context frames need past_actions [B, {T0 - 1}, {self.action_dim}]")
        return z, states, (past_actions if T0 > 1 else None)

    def rollout_context(
        self,
        z: torch.Tensor,
        states: torch.Tensor,
        *,
        past_actions: torch.Tensor | None = None,
        extrinsics: torch.Tensor | None = None,
    ) -> RolloutContext:
        """Run the history once: z [1 or B, N, D] (or [.., T0, N, D] with past_actions [.., T0 - 1, A]),
        states [.., 7] (or [.., T0, 7]). The result feeds any number of ``rollout_from`` calls."""
        z, states, past_actions = self._rollout_inputs(z, states, past_actions)
        T0 = z.shape[1]
        ext = None if extrinsics is None else extrinsics[:, None].expand(-1, T0 - 1, -1)
        history = self.prefill(z[:, :-1], past_actions, states[:, :-1], ext) if T0 > 1 else None
        return RolloutContext(z[:, -1], states[:, -1], T0 - 1, history, extrinsics)

    def rollout_from(
        self,
        ctx: RolloutContext,
        actions: torch.Tensor,
        *,
        future_states: torch.Tensor | None = None,
        normalize_reps: bool = True,
    ) -> torch.Tensor:
        """Imagine H future frames for each of B candidate action sequences [B, H, A] from a context.

        The first action is taken at the last context frame. Each imagined step runs only its own
        K + N tokens against the context's keys / values and the earlier imagined steps' (no mask
        needed: a new step sees all of the past and all of itself). Own predictions are fed back layer-normed
        (``normalize_reps``) with the state advanced by ``integrate_state`` (or ``future_states``
        [1 or B, H - 1, A]). Returns [B, H, N, D]: predicted frames T0 .. T0 + H - 1.
        """
        self._check_actions(actions)
        H = actions.shape[1]
        # With autograd on (training, gradient refinement) the plain cached ``step``; else the shared-history step.
        grad = torch.is_grad_enabled()
        shared_step = self.compiled_step or self.shared_step
        cache, own = ctx.history, None
        z_t, s_t = ctx.z_last, ctx.s_last  # [Bz, N, D], [Bs, A]
        preds = []
        for h in range(H):
            t = ctx.t_last + h
            if grad:
                z_next, cache = self.step(z_t, actions[:, h], s_t, t, cache, ctx.extrinsics)  # [B, N, D]
            else:
                cos, sin = self._rope(t, 1, z_t.device, self.predictor_embed.weight.dtype)  # [S, hd]
                z_next, own = shared_step(z_t, actions[:, h], s_t, cos, sin, ctx.history, own, ctx.extrinsics)
            if normalize_reps:
                z_next = F.layer_norm(z_next, (z_next.shape[-1],))
            preds.append(z_next)
            if h + 1 < H:
                s_t = future_states[:, h] if future_states is not None else integrate_state(s_t, actions[:, h])
                z_t = z_next
        return torch.stack(preds, dim=1)  # [B, H, N, D]

    def rollout(
        self,
        z: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor,
        *,
        past_actions: torch.Tensor | None = None,
        future_states: torch.Tensor | None = None,
        extrinsics: torch.Tensor | None = None,
        normalize_reps: bool = True,
    ) -> torch.Tensor:
        """Imagine H future frames for each of B candidate action sequences (KV-cached).

        z: context [1 or B, N, D] (or [1 or B, T0, N, D] with history); states: [1 or B, 7]
        (or [.., T0, 7]); actions: [B, H, 7] planned, the first taken at the last context frame;
        past_actions: [1 or B, T0 - 1, 7] executed between history frames; future_states:
        [1 or B, H - 1, 7] to use instead of integrating the actions; extrinsics: [1 or B, 6].
        Returns [B, H, N, D]: predicted frames T0 .. T0 + H - 1 (layer-normed if normalize_reps).
        A planner that scores many batches from one observation builds the context once instead
        (``rollout_context`` + ``rollout_from``).
        """
        ctx = self.rollout_context(z, states, past_actions=past_actions, extrinsics=extrinsics)
        return self.rollout_from(ctx, actions, future_states=future_states, normalize_reps=normalize_reps)

    def rollout_full_recompute(
        self,
        z: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor,
        *,
        past_actions: torch.Tensor | None = None,
        future_states: torch.Tensor | None = None,
        extrinsics: torch.Tensor | None = None,
        normalize_reps: bool = True,
    ) -> torch.Tensor:
        """Same contract as ``rollout``, computed the way the public planner does it: the whole
        history is re-run through ``forward`` at every imagined step (reference / benchmark)."""
        self._check_actions(actions)
        z, states, past_actions = self._rollout_inputs(z, states, past_actions)
        B, H = actions.shape[0], actions.shape[1]
        z_traj, s_traj = _as_batch(z, B), _as_batch(states, B)  # [B, T0, N, D], [B, T0, A]
        past = None if past_actions is None else _as_batch(past_actions, B)  # [B, T0 - 1, A]
        preds = []
        for h in range(H):
            a_traj = actions[:, : h + 1] if past is None else torch.cat([past, actions[:, : h + 1]], dim=1)
            T = z_traj.shape[1]
            ext = None if extrinsics is None else _as_batch(extrinsics, B)[:, None].expand(-1, T, -1)
            z_next = self.forward(z_traj, a_traj, s_traj, ext)[:, -1]  # [B, N, D]
            if normalize_reps:
                z_next = F.layer_norm(z_next, (z_next.shape[-1],))
            preds.append(z_next)
            if future_states is not None and h + 1 < H:
                s_next = future_states[:, h]  # [1 or B, A]
            else:
                s_next = integrate_state(s_traj[:, -1], actions[:, h])  # [B, A]
            z_traj = torch.cat([z_traj, z_next[:, None]], dim=1)  # [B, T + 1, N, D]
            s_traj = torch.cat([s_traj, _as_batch(s_next, B)[:, None]], dim=1)  # [B, T + 1, A]
        return torch.stack(preds, dim=1)  # [B, H, N, D]


def build_predictor(
    name: str,
    *,
    embed_dim: int,
    grid_size: int | tuple[int, int] = 16,
    action_dim: int = 7,
    use_extrinsics: bool = False,
    extrinsics_encoder: bool = True,
) -> ACPredictor:
    """A registry size for an encoder of width ``embed_dim`` and a gh x gw patch grid,
    e.g. ``build_predictor("ac_official", embed_dim=1408, grid_size=16)``."""
    if name not in PREDICTOR_SIZES:
        raise KeyError(f"unknown predictor size {name!r}; known: {sorted(PREDICTOR_SIZES)}")
    return ACPredictor(
        embed_dim=embed_dim,
        **asdict(PREDICTOR_SIZES[name]),
        grid_size=grid_size,
        action_dim=action_dim,
        use_extrinsics=use_extrinsics,
        extrinsics_encoder=extrinsics_encoder,
    )
