"""LatentMPC with a real (tiny, random) V-JEPA world model: context bookkeeping and planner plumbing."""

import numpy as np
import pytest

from vjepa_planning.planners import CEMPlanner, PlannerConfig
from vjepa_planning.planners.mpc import LatentMPC


class RecordingWorldModel:
    def __init__(self, wm):
        self.wm, self.calls = wm, []

    def encode(self, frames):
        return self.wm.encode(frames)

    def rollout(self, z, state, actions, **kw):
        self.calls.append((tuple(z.shape), tuple(state.shape), None if kw.get("past_actions") is None else tuple(kw["past_actions"].shape)))
        return self.wm.rollout(z, state, actions, **kw)


def frame(seed):
    return np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)


def test_context_grows_to_the_configured_history(tiny_wm):
    wm = RecordingWorldModel(tiny_wm)
    cfg = PlannerConfig(horizon=2, num_samples=8, iterations=1, num_elites=2, seed=0)
    mpc = LatentMPC(wm, CEMPlanner(wm, cfg), context_frames=3)
    mpc.set_goal(frame(99))
    state = np.array([0.5, 0, 0.3, np.pi, 0, 0, 0])
    for t in range(4):
        step = mpc.act(frame(t), state)
        assert step.action.shape == (7,) and np.all(np.isfinite(step.action))
        assert np.all(np.abs(step.action[:3]) <= cfg.max_translation + 1e-6) and np.all(step.action[3:6] == 0)
        mpc.observe_executed(step.action)
    shapes = [c for c in wm.calls]
    assert shapes[0] == ((1, 4, 64), (1, 7), None)  # first step: just the current frame
    assert shapes[1] == ((1, 2, 4, 64), (1, 2, 7), (1, 1, 7))
    assert shapes[2] == shapes[3] == ((1, 3, 4, 64), (1, 3, 7), (1, 2, 7))  # capped at 3 frames


def test_act_before_goal_is_an_error(tiny_wm):
    mpc = LatentMPC(tiny_wm, CEMPlanner(tiny_wm, PlannerConfig(num_samples=4, num_elites=2, iterations=1)))
    with pytest.raises(RuntimeError, match="set_goal"):
        mpc.act(frame(0), np.zeros(7))


def test_nan_world_model_makes_the_controller_hold_still(tiny_wm):
    class Broken(RecordingWorldModel):
        def rollout(self, z, state, actions, **kw):
            return super().rollout(z, state, actions, **kw) * float("nan")

    wm = Broken(tiny_wm)
    mpc = LatentMPC(wm, CEMPlanner(wm, PlannerConfig(num_samples=4, num_elites=2, iterations=2)))
    mpc.set_goal(frame(1))
    step = mpc.act(frame(2), np.zeros(7))
    assert step.fallback and np.all(step.action == 0)


def test_missing_executed_action_is_a_clear_error(tiny_wm):
    mpc = LatentMPC(tiny_wm, CEMPlanner(tiny_wm, PlannerConfig(num_samples=4, num_elites=2, iterations=1)), context_frames=2)
    mpc.set_goal(frame(1))
    mpc.act(frame(2), np.zeros(7))
    with pytest.raises(RuntimeError, match="observe_executed"):
        mpc.act(frame(3), np.zeros(7))
