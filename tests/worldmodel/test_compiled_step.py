"""The torch.compile'd planning step: equal to eager, compiled only for the shapes warm_up prepared,
and a compiler failure falls back to eager instead of stopping a plan."""

import pytest
import torch

from vjepa_planning.planners import PlannerConfig
from vjepa_planning.worldmodel.compiled_step import CompiledStep
from vjepa_planning.worldmodel.compute_dtype import resolve_compile
from vjepa_planning.worldmodel.encoder import build_encoder
from vjepa_planning.worldmodel.predictor import build_predictor
from vjepa_planning.worldmodel.protocol import RolloutWarmUp
from vjepa_planning.worldmodel.world_model import VJEPAWorldModel

needs_compiler = pytest.mark.skipif(not resolve_compile("auto", "cpu")[0], reason="no C++ compiler for inductor")


def world_model(compile: bool) -> VJEPAWorldModel:
    torch.manual_seed(0)
    enc = build_encoder("vit_micro", patch_size=8, img_size=32)  # 16 patches of width 64
    pred = build_predictor("ac_micro", embed_dim=64, grid_size=4)
    with torch.no_grad():  # weights far from init, so that attention is not near uniform
        for p in pred.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return VJEPAWorldModel.from_modules(enc, pred, compile=compile)


def context(T0: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.nn.functional.layer_norm(torch.randn(1, T0, 16, 64, generator=g), (64,))
    return z, torch.randn(1, T0, 7, generator=g) * 0.2, torch.randn(1, T0 - 1, 7, generator=g) * 0.05


@needs_compiler
def test_compiled_rollout_equals_eager_and_compiles_only_warmed_shapes():
    compiled, eager = world_model(compile=True), world_model(compile=False)
    assert isinstance(compiled, RolloutWarmUp)
    first = compiled.warm_up([6], horizon=2, context_frames=3)
    step = compiled.predictor.compiled_step
    assert first > 0 and len(step.shapes) == 2  # first imagined step (batch-1 frame) and the second
    z, s, past = context()
    actions = torch.randn(6, 2, 7, generator=torch.Generator().manual_seed(1)) * 0.05
    ref = eager.rollout(z, s, actions, past_actions=past)
    torch.testing.assert_close(compiled.rollout(z, s, actions, past_actions=past), ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(eager.rollout(z, s, actions, past_actions=past, full_recompute=True), ref, atol=1e-4, rtol=1e-4)
    # a batch or a context length warm_up did not prepare: eager, no new graph, same numbers
    shapes = set(step.shapes)
    torch.testing.assert_close(compiled.rollout(z, s, actions[:4], past_actions=past), ref[:4], atol=1e-4, rtol=1e-4)
    z2, s2, past2 = z[:, 1:], s[:, 1:], past[:, 1:]
    torch.testing.assert_close(
        compiled.rollout(z2, s2, actions, past_actions=past2), eager.rollout(z2, s2, actions, past_actions=past2), atol=1e-4, rtol=1e-4
    )
    assert step.shapes == shapes
    assert compiled.warm_up([6], 2, 3) < first and step.shapes == shapes  # prepared already: nothing compiles


@needs_compiler
def test_several_batch_sizes_share_one_dynamic_graph():
    """iCEM's shrinking sample count: two graphs (first and later steps) serve every batch size > 1."""
    compiled, eager = world_model(compile=True), world_model(compile=False)
    compiled.warm_up([6, 4], horizon=2, context_frames=3)
    step = compiled.predictor.compiled_step
    assert step.dynamic_batch and len(step.shapes) == 2 and all(key[1] == "B" for key in step.shapes)
    z, s, past = context()
    actions = torch.randn(5, 2, 7, generator=torch.Generator().manual_seed(2)) * 0.05  # a size never prepared
    torch.testing.assert_close(
        compiled.rollout(z, s, actions, past_actions=past), eager.rollout(z, s, actions, past_actions=past), atol=1e-4, rtol=1e-4
    )
    assert len(step.shapes) == 2


@needs_compiler
def test_many_compiled_predictors_in_one_process_stay_compiled():
    """dynamo counts graphs per code object, shared by every predictor: the fifth must still compile."""
    from torch.profiler import profile

    z, s, past = context()
    actions = torch.randn(6, 2, 7) * 0.05
    for _ in range(5):
        wm = world_model(compile=True)
        wm.warm_up([6], horizon=2, context_frames=3)
    with profile() as prof:
        wm.rollout(z, s, actions, past_actions=past)
    assert any(e.key.startswith("Torch-Compiled Region") for e in prof.key_averages())


@needs_compiler
def test_counting_flops_does_not_turn_the_compiled_step_off():
    """FlopCounterMode (planning_speed counts FLOPs) runs the step eagerly; afterwards it is compiled again."""
    from torch.profiler import profile
    from torch.utils.flop_counter import FlopCounterMode

    wm = world_model(compile=True)
    wm.warm_up([6], horizon=2, context_frames=3)
    z, s, past = context()
    actions = torch.randn(6, 2, 7) * 0.05
    with FlopCounterMode(display=False) as counter:
        counted = wm.rollout(z, s, actions, past_actions=past)
    assert counter.get_total_flops() > 0
    with profile() as prof:
        after = wm.rollout(z, s, actions, past_actions=past)
    assert any(e.key.startswith("Torch-Compiled Region") for e in prof.key_averages())
    torch.testing.assert_close(after, counted, atol=1e-4, rtol=1e-4)


def test_a_failing_compiler_falls_back_to_eager_once():
    wm = world_model(compile=False)
    step = CompiledStep(wm.predictor.shared_step)
    calls = []

    def broken(*args):
        calls.append(1)
        raise RuntimeError("inductor: no working C++ compiler\nlong details")

    step.compiled = broken
    wm.predictor.compiled_step = step
    z, s, past = context()
    actions = torch.randn(3, 2, 7) * 0.05
    with pytest.warns(UserWarning, match="compiled rollout unavailable .RuntimeError: inductor: no working C\\+\\+ compiler."):
        wm.warm_up([3], horizon=2, context_frames=3)
    out = wm.rollout(z, s, actions, past_actions=past)
    wm.warm_up([3], horizon=2, context_frames=3)  # no second attempt, no second warning
    assert len(calls) == 1 and step.error.startswith("RuntimeError")
    wm.predictor.compiled_step = None
    torch.testing.assert_close(out, wm.rollout(z, s, actions, past_actions=past))


def test_eager_world_model_has_no_compiled_step_and_warm_up_is_free():
    wm = world_model(compile=False)
    assert wm.predictor.compiled_step is None and wm.warm_up([128], 2, 4) == 0.0


def test_resolve_compile(monkeypatch):
    assert resolve_compile("false", "cpu") == (False, "set explicitly")
    assert resolve_compile(True, "cpu") == (True, "set explicitly")
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert resolve_compile("auto", "cpu") == (False, "auto: no C++ compiler for inductor")
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}" if name == "g++" else None)
    assert resolve_compile("auto", "cpu") == (True, "auto: C++ compiler g++")
    assert resolve_compile("auto", "mps")[0] is False
    with pytest.raises(ValueError, match="world_model.compile must be auto, true or false, got 'yes'"):
        resolve_compile("yes", "cpu")


def test_planner_batch_sizes():
    assert PlannerConfig().batch_sizes() == [128]
    icem = PlannerConfig(sample_decay=1.25, iterations=4)
    assert icem.batch_sizes() == sorted({icem.samples_at(i) for i in range(4)}, reverse=True) == [128, 103, 82, 66]
