"""LatentMPC with a real (tiny, random) V-JEPA world model: context bookkeeping and planner plumbing."""

import numpy as np
import pytest
import torch

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


def test_the_goal_images_gripper_reaches_the_planner(tiny_wm):
    """A world model that reads the gripper (ReadsGripper) is asked once per goal image; its answer goes to every plan."""

    class Reading(RecordingWorldModel):
        def __init__(self, wm, closed):
            super().__init__(wm)
            self.closed, self.asked = closed, 0

        def gripper_closed(self, z):
            self.asked += 1
            return None if self.closed is None else torch.full((z.shape[0],), self.closed)

    class Spy(CEMPlanner):
        def plan(self, *args, **kw):
            self.seen = kw.get("goal_gripper")
            return super().plan(*args, **kw)

    cfg = PlannerConfig(horizon=2, num_samples=8, iterations=1, num_elites=2, seed=0)
    for closed, expected in ((0.9, 0.9), (None, None), (float("nan"), None)):  # a NaN reading is dropped, not planned on
        wm = Reading(tiny_wm, closed)
        mpc = LatentMPC(wm, Spy(wm, cfg))
        mpc.set_goal(frame(99))
        for t in range(2):
            mpc.observe_executed(mpc.act(frame(t), np.zeros(7)).action)
        assert wm.asked == 1 and (mpc.planner.seen == pytest.approx(expected) if expected else mpc.planner.seen is None)


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
