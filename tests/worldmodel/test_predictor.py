"""AC predictor: KV-cached rollout == full recompute, causality, teacher forcing == stepping, sizes."""

import pytest
import torch
import torch.nn.functional as F

from vjepa_planning.worldmodel.predictor import PREDICTOR_SIZES, ACPredictor, block_causal_mask, build_predictor
from vjepa_planning.worldmodel.state_math import integrate_state

D, G = 32, (3, 4)  # encoder width, non-square patch grid (exercises the width rescaling)
N = G[0] * G[1]


def make(seed: int = 0, **kw) -> ACPredictor:
    torch.manual_seed(seed)
    p = ACPredictor(embed_dim=D, predictor_embed_dim=48, depth=3, num_heads=2, grid_size=G, **kw).eval()
    with torch.no_grad():  # non-trivial weights: default init is too close to uniform attention
        for prm in p.parameters():
            prm.add_(torch.randn_like(prm) * 0.2)
    return p


def inputs(B: int, H: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    z0 = F.layer_norm(torch.randn(1, N, D, generator=g), (D,))
    s0 = torch.randn(1, 7, generator=g) * 0.3
    s0[:, 6] = 0.5
    actions = torch.randn(B, H, 7, generator=g) * 0.1
    return z0, s0, actions


def test_block_causal_mask():
    m = block_causal_mask(3, 2)
    assert m.shape == (6, 6)
    assert m[1, 0] and m[0, 1] and m[3, 1] and not m[1, 2] and not m[3, 4]


@pytest.mark.parametrize("H", [1, 2, 4])
def test_cached_rollout_equals_full_recompute(H):
    p = make()
    z0, s0, actions = inputs(5, H)
    with torch.no_grad():
        cached = p.rollout(z0, s0, actions)
        full = p.rollout_full_recompute(z0, s0, actions)
    assert cached.shape == (5, H, N, D)
    torch.testing.assert_close(cached, full, atol=2e-5, rtol=2e-5)


def test_cached_rollout_with_shared_history_and_extrinsics():
    p = make(use_extrinsics=True)
    g = torch.Generator().manual_seed(3)
    z_hist = torch.randn(1, 3, N, D, generator=g)  # 3 context frames, shared by all candidates
    s_hist = torch.randn(1, 3, 7, generator=g)
    past = torch.randn(1, 2, 7, generator=g) * 0.1
    ext = torch.randn(1, 6, generator=g)
    actions = torch.randn(4, 3, 7, generator=g) * 0.1
    kw = dict(past_actions=past, extrinsics=ext)
    with torch.no_grad():
        torch.testing.assert_close(
            p.rollout(z_hist, s_hist, actions, **kw),
            p.rollout_full_recompute(z_hist, s_hist, actions, **kw),
            atol=2e-5,
            rtol=2e-5,
        )


def test_shared_context_equals_explicit_per_candidate_context():
    p = make()
    z0, s0, actions = inputs(4, 2)
    with torch.no_grad():
        shared = p.rollout(z0, s0, actions)
        explicit = p.rollout(z0.expand(4, -1, -1).clone(), s0.expand(4, -1).clone(), actions)
        single = torch.cat([p.rollout(z0, s0, actions[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(shared, explicit, atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(shared, single, atol=2e-5, rtol=2e-5)


def test_one_context_serves_many_rollouts_of_any_batch_and_horizon():
    """The context is read-only: a later call must not see keys / values an earlier one left, and the
    batch-1 history is never broadcast into per-candidate copies."""
    p = make()
    g = torch.Generator().manual_seed(4)
    z_hist, s_hist = torch.randn(1, 3, N, D, generator=g), torch.randn(1, 3, 7, generator=g)
    past = torch.randn(1, 2, 7, generator=g) * 0.1
    with torch.no_grad():
        ctx = p.rollout_context(z_hist, s_hist, past_actions=past)
        before = [(k.clone(), v.clone()) for k, v in ctx.history]
        for B, H, seed in [(6, 3, 0), (6, 3, 1), (2, 1, 2), (6, 3, 3), (6, 2, 4)]:
            actions = torch.randn(B, H, 7, generator=torch.Generator().manual_seed(seed)) * 0.1
            reused = p.rollout_from(ctx, actions)
            torch.testing.assert_close(reused, p.rollout_full_recompute(z_hist, s_hist, actions, past_actions=past), atol=2e-5, rtol=2e-5)
    for (k, v), (k0, v0) in zip(ctx.history, before):
        assert k.shape[0] == 1 and torch.equal(k, k0) and torch.equal(v, v0)


@pytest.mark.parametrize("t", [0, 1, 2])
def test_prediction_at_t_ignores_later_actions(t):
    p = make()
    z0, s0, actions = inputs(3, 4)
    changed = actions.clone()
    changed[:, t + 1 :] += 0.5
    with torch.no_grad():
        a, b = p.rollout(z0, s0, actions), p.rollout(z0, s0, changed)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1])
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])


def test_prediction_depends_on_the_first_action():
    p = make()
    z0, s0, actions = inputs(2, 1)
    with torch.no_grad():
        out = p.rollout(z0, s0, actions)
    assert (out[0] - out[1]).abs().max() > 1e-3


def test_teacher_forced_forward_equals_stepping_with_cache():
    p = make()
    g = torch.Generator().manual_seed(5)
    B, T = 2, 4
    z, a, s = torch.randn(B, T, N, D, generator=g), torch.randn(B, T, 7, generator=g), torch.randn(B, T, 7, generator=g)
    with torch.no_grad():
        tf = p(z, a, s)  # [B, T, N, D]
        flat = p(z.flatten(1, 2), a, s)  # official layout [B, T * N, D]
        cache, steps = None, []
        for t in range(T):
            out, cache = p.step(z[:, t], a[:, t], s[:, t], t, cache)
            steps.append(out)
    torch.testing.assert_close(flat, tf.flatten(1, 2))
    torch.testing.assert_close(torch.stack(steps, 1), tf, atol=2e-5, rtol=2e-5)
    # and prefill + step continues the same sequence
    with torch.no_grad():
        cache = p.prefill(z[:, :2], a[:, :2], s[:, :2])
        out, _ = p.step(z[:, 2], a[:, 2], s[:, 2], 2, cache)
    torch.testing.assert_close(out, tf[:, 2], atol=2e-5, rtol=2e-5)


def test_rollout_feeds_back_normalised_predictions_and_integrated_states():
    """Step 2 of a rollout == forward on [z0, LN(pred1)] with states [s0, s0 + a0]."""
    p = make()
    z0, s0, actions = inputs(3, 2)
    with torch.no_grad():
        roll = p.rollout(z0, s0, actions)
        z1 = F.layer_norm(p(z0[:, None].expand(3, -1, -1, -1), actions[:, :1], s0[:, None].expand(3, 1, 7))[:, 0], (D,))
        s1 = integrate_state(s0, actions[:, 0])
        z_traj = torch.stack([z0.expand(3, -1, -1), z1], 1)
        s_traj = torch.stack([s0.expand(3, -1), s1], 1)
        z2 = F.layer_norm(p(z_traj, actions, s_traj)[:, 1], (D,))
    torch.testing.assert_close(roll[:, 0], z1, atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(roll[:, 1], z2, atol=2e-5, rtol=2e-5)


def test_future_states_override_integration():
    p = make()
    z0, s0, actions = inputs(2, 3)
    fs = torch.randn(2, 2, 7)
    with torch.no_grad():
        a = p.rollout(z0, s0, actions, future_states=fs)
        b = p.rollout_full_recompute(z0, s0, actions, future_states=fs)
        c = p.rollout(z0, s0, actions)
    torch.testing.assert_close(a, b, atol=2e-5, rtol=2e-5)
    assert not torch.allclose(a[:, 1:], c[:, 1:])


def test_bfloat16_rollout_is_close_to_float32():
    p = make()
    z0, s0, actions = inputs(4, 2)
    with torch.no_grad():
        ref = p.rollout(z0, s0, actions)
        out = p.to(torch.bfloat16).rollout(z0, s0, actions)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().mean() < 0.05


def test_gradients_flow_through_the_cached_rollout():
    p = make()
    z0, s0, actions = inputs(2, 2)
    p.rollout(z0, s0, actions).square().mean().backward()
    assert p.action_encoder.weight.grad is not None and p.predictor_blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_bad_shapes_are_reported():
    p = make()
    z0, s0, actions = inputs(2, 2)
    with pytest.raises(ValueError, match=r"rollout z: expected \[\.\.\., 12 patches, 32\].*\(1, 10, 32\)"):
        p.rollout(z0[:, :10], s0, actions)
    with pytest.raises(ValueError, match=r"actions must be \[B, H, 7\]"):
        p.rollout(z0, s0, actions[..., :6])
    with pytest.raises(ValueError, match=r"need past_actions"):
        p.rollout(torch.randn(1, 2, N, D), torch.randn(1, 2, 7), actions)
    with pytest.raises(ValueError, match=r"uses extrinsics tokens"):
        make(use_extrinsics=True).rollout(z0, s0, actions)


@pytest.mark.parametrize("name", sorted(PREDICTOR_SIZES))
def test_every_size_builds(name):
    s = PREDICTOR_SIZES[name]
    with torch.device("meta"):
        p = build_predictor(name, embed_dim=1408, grid_size=16)
    W, M = s.predictor_embed_dim, int(s.predictor_embed_dim * s.mlp_ratio)
    block = 4 * W + 3 * W * W + 3 * W + W * W + W + W * M + M + M * W + W
    io = (1408 * W + W) + 2 * (7 * W + W) + (6 * W + W) + 2 * W + (W * 1408 + 1408)
    assert sum(q.numel() for q in p.parameters()) == io + s.depth * block


def test_official_size_is_the_published_300m():
    with torch.device("meta"):
        p = build_predictor("ac_official", embed_dim=1408, grid_size=16)
    assert sum(q.numel() for q in p.parameters()) == 305_220_992
    assert len(p.predictor_blocks) == 24 and p.width == 1024 and p.tokens_per_step == 258
