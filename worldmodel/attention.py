"""Attention over a shared prefix plus each candidate's own keys, merged by log-sum-exp.

A planner rolls out B candidate action sequences from one observation. Every candidate's queries
attend to two kinds of keys: the observation's history (identical for all B: batch 1) and the
candidate's own imagined steps. Broadcasting the history to B copies and running one attention per
candidate spends most of the time copying keys and in small per-candidate kernels. Instead:

    prefix part:  queries of all candidates side by side [1, h, B * n, hd] against the batch-1 history
                  keys: one long attention, no copy of the history;
    own part:     [B, h, n, hd] against each candidate's own keys [B, h, m, hd];
    merge:        softmax over the union of the keys from the two partial softmaxes' log-sum-exps:
                  y = y_own + sigmoid(lse_prefix - lse_own) * (y_prefix - y_own).

``attention_lse`` is the one primitive: the output and the log-sum-exp of each query's scores, by an
explicit softmax (short key sets: on the CPU it beats the flash kernel there, whose per-(batch, head)
cost dominates at a few dozen keys). ``long_attention_lse`` is the same for the long prefix part: on
the CPU in eager mode PyTorch's flash kernel, which returns both; under ``torch.compile`` the explicit
softmax again, which inductor fuses into one pass that beats the flash kernel on these shapes. ``shared_prefix_attention`` is the combination;
``F.scaled_dot_product_attention`` over the concatenated keys is its reference
(tests/worldmodel/test_attention.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KV = tuple[torch.Tensor, torch.Tensor]  # (k, v), each [B, heads, L, head_dim]


def attention_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q [B, h, n, hd], k / v [B, h, m, hd] -> output [B, h, n, hd] (q's dtype), log-sum-exp [B, h, n] (float32)."""
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * q.shape[-1] ** -0.5  # [B, h, n, m]
    top = scores.amax(dim=-1, keepdim=True)  # [B, h, n, 1]
    probs = torch.exp(scores - top)  # [B, h, n, m], unnormalised (one exp per score)
    total = probs.sum(dim=-1, keepdim=True)  # [B, h, n, 1]
    out = torch.matmul(probs.to(v.dtype), v) / total  # [B, h, n, hd] (float32 where v is bf16: the division upcasts)
    return out.to(q.dtype), (top + total.log())[..., 0]


def long_attention_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``attention_lse`` for many queries and keys: the CPU flash kernel where it applies (eager, no autograd)."""
    if q.device.type == "cpu" and not torch.compiler.is_compiling() and not (torch.is_grad_enabled() and q.requires_grad):
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v)
    return attention_lse(q, k, v)


def shared_prefix_attention(q: torch.Tensor, prefix: KV | None, own: KV) -> torch.Tensor:
    """q [B, h, n, hd] attends to prefix keys (batch 1 or B, or None) followed by its own keys [B, h, m, hd];
    equal to scaled_dot_product_attention(q, cat(prefix, own), ...). Returns [B, h, n, hd]."""
    if prefix is None:
        return F.scaled_dot_product_attention(q, *own)
    B, h, n, hd = q.shape
    pk, pv = prefix
    if pk.shape[0] == 1 and B > 1:
        q_all = q.transpose(0, 1).reshape(1, h, B * n, hd)  # [1, h, B * n, hd]: candidates along the query axis
        y_pre, lse_pre = long_attention_lse(q_all, pk, pv)  # [1, h, B * n, hd], [1, h, B * n]
        y_pre = y_pre.view(h, B, n, hd).transpose(0, 1)  # [B, h, n, hd]
        lse_pre = lse_pre.view(h, B, n).transpose(0, 1)  # [B, h, n]
    else:
        y_pre, lse_pre = long_attention_lse(q, pk, pv)  # per-candidate histories [B, h, n, hd], [B, h, n]
    y_own, lse_own = attention_lse(q, *own)  # [B, h, n, hd], [B, h, n]
    w_pre = torch.sigmoid(lse_pre - lse_own)[..., None]  # [B, h, n, 1]: the prefix's share of the softmax mass
    return torch.lerp(y_own.float(), y_pre.float(), w_pre).to(q.dtype)
