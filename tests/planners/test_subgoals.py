"""Planning through sub-goal images (planners/mpc.py): the switching rule and the warm start."""

import numpy as np
import pytest
import torch

from vjepa_planning.planners import CEMPlanner, PlannerConfig
from vjepa_planning.planners.mpc import LatentMPC, SubgoalMPC, per_goal_steps


def image(seed):
    return np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)


class InitRecordingPlanner(CEMPlanner):
    def plan(self, *args, init=None, **kw):
        self.inits.append(init)
        return super().plan(*args, init=init, **kw)


def make_mpc(wm):
    planner = InitRecordingPlanner(wm, PlannerConfig(horizon=2, num_samples=8, iterations=1, num_elites=2, seed=0))
    planner.inits = []
    return LatentMPC(wm, planner, context_frames=2)


STATE = np.array([0.5, 0, 0.3, np.pi, 0, 0, 0])


def step(policy, t):
    """One control step on a random frame: plan, then report the planned action as executed."""
    out = policy.act(image(t), STATE)
    policy.observe_executed(out.action)
    return out


def test_switch_every_walks_the_goals_in_order_and_drops_the_stale_warm_start(tiny_wm):
    goals = [image(100), image(101), image(102)]
    mpc = make_mpc(tiny_wm)
    policy = SubgoalMPC(mpc, goals, switch_every=2)
    seen = []
    for t in range(7):
        seen.append(step(policy, t).goal)
        z_goal = tiny_wm.encode(goals[policy.current_goal])
        torch.testing.assert_close(mpc.z_goal, z_goal)
    assert seen == [0, 0, 1, 1, 2, 2, 2]
    # The first plan toward each new goal starts cold; the others are warm-started.
    warm = [init is not None for init in mpc.planner.inits]
    assert warm == [False, True, False, True, False, True, True]


def test_switch_every_can_give_each_subgoal_its_own_share(tiny_wm):
    policy = SubgoalMPC(make_mpc(tiny_wm), [image(100), image(101), image(102)], switch_every=[3, 1])
    seen = []
    for t in range(6):
        seen.append(step(policy, t).goal)
    assert seen == [0, 0, 0, 1, 2, 2]
    with pytest.raises(ValueError, match="one per sub-goal"):
        SubgoalMPC(make_mpc(tiny_wm), [image(1), image(2), image(3)], switch_every=[3])


def test_switch_energy_moves_on_as_soon_as_the_plan_is_good_enough(tiny_wm):
    goals = [image(100), image(101)]
    policy = SubgoalMPC(make_mpc(tiny_wm), goals, switch_energy=float("inf"))
    first = step(policy, 0)
    assert policy.current_goal == 1 and (first.goal, first.goals) == (0, 2)
    second = step(policy, 1)
    assert policy.current_goal == 1 and second.goal == 1
    never = SubgoalMPC(make_mpc(tiny_wm), goals, switch_energy=-1.0)
    assert [step(never, t).goal for t in range(3)] == [0, 0, 0]


def test_single_goal_and_bad_rules(tiny_wm):
    single = SubgoalMPC(make_mpc(tiny_wm), image(5))
    out = single.act(image(0), STATE)
    assert len(single.goals) == 1 and (out.goal, out.goals) == (0, 1) and single.current_goal == 0
    with pytest.raises(ValueError, match="at least one goal"):
        SubgoalMPC(make_mpc(tiny_wm), [])
    with pytest.raises(ValueError, match="switching rule"):
        SubgoalMPC(make_mpc(tiny_wm), [image(1), image(2)])
    with pytest.raises(ValueError, match="switch_every"):
        SubgoalMPC(make_mpc(tiny_wm), [image(1), image(2)], switch_every=0)


def test_without_a_rule_each_image_gets_an_even_share_of_the_budget():
    assert per_goal_steps(3, None, None, budget=20) == [6, 6]
    assert per_goal_steps(3, None, None, budget=2) == [1, 1]  # never fewer than one step
    assert per_goal_steps(3, 4, None, budget=20) == [4, 4]  # a rule given wins over the budget
    assert per_goal_steps(2, None, 0.1, budget=20) is None  # an energy rule alone
    assert per_goal_steps(1, None, None, budget=None) is None  # one image needs no rule
