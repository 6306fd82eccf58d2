"""Shared-prefix attention == one attention over the concatenated keys; the log-sum-exp primitive."""

import pytest
import torch
import torch.nn.functional as F

from vjepa_planning.worldmodel.attention import attention_lse, long_attention_lse, shared_prefix_attention


def qkv(B, h, n, m, hd, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, L, hd, generator=g).to(dtype) * 2 for b, L in ((B, n), (B, m), (B, m))]


def test_attention_lse_returns_the_log_sum_exp_of_the_scaled_scores():
    q, k, v = qkv(3, 2, 5, 7, 8)
    out, lse = attention_lse(q, k, v)
    scores = q @ k.transpose(-1, -2) / 8**0.5
    torch.testing.assert_close(lse, torch.logsumexp(scores, -1))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    out2, lse2 = long_attention_lse(q, k, v)  # the CPU flash kernel: same contract
    torch.testing.assert_close(out2, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lse2, lse, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("prefix_batch", [1, 4, None])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_shared_prefix_equals_attention_over_the_concatenated_keys(prefix_batch, dtype, tol):
    B, h, n, hd = 4, 2, 6, 16
    q, k_own, v_own = qkv(B, h, n, 9, hd, seed=1, dtype=dtype)
    prefix = None
    k_all, v_all = k_own, v_own
    if prefix_batch is not None:
        pk, _, pv = qkv(prefix_batch, h, 11, 11, hd, seed=2, dtype=dtype)
        prefix = (pk, pv)
        k_all = torch.cat([pk.expand(B, -1, -1, -1), k_own], 2)
        v_all = torch.cat([pv.expand(B, -1, -1, -1), v_own], 2)
    got = shared_prefix_attention(q, prefix, (k_own, v_own))
    ref = F.scaled_dot_product_attention(q.float(), k_all.float(), v_all.float())
    assert got.dtype == dtype and got.shape == (B, h, n, hd)
    torch.testing.assert_close(got.float(), ref, atol=tol, rtol=tol)


def test_a_dominant_prefix_or_own_key_wins_the_merge():
    """The merge weights by softmax mass: one key with a huge score takes the output, whichever side it is on."""
    B, h, n, hd = 2, 1, 1, 4
    q = torch.ones(B, h, n, hd)
    pk, pv = torch.zeros(1, h, 3, hd), torch.zeros(1, h, 3, hd)
    pk[0, 0, 1] = 30.0
    pv[0, 0, 1] = 7.0
    own = (torch.zeros(B, h, 2, hd), torch.ones(B, h, 2, hd) * -3.0)
    torch.testing.assert_close(shared_prefix_attention(q, (pk, pv), own), torch.full((B, h, n, hd), 7.0), atol=1e-4, rtol=0)
    own[0][:, :, 0] = 60.0  # now an own key dominates
    torch.testing.assert_close(shared_prefix_attention(q, (pk, pv), own), torch.full((B, h, n, hd), -3.0), atol=1e-4, rtol=0)
