"""Planning through sub-goal images: the switching rule, the warm start, and the energy stop."""

import numpy as np
import pytest
import torch

from apps.episode_runner import PlannerPolicy, run_episode
from planners import CEMPlanner, PlannerConfig
from planners.mpc import LatentMPC
from robot_drivers.sim_driver import SimDriver


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


class Obs:
    def __init__(self, seed):
        self.image, self.state = image(seed), np.array([0.5, 0, 0.3, np.pi, 0, 0, 0])


def test_switch_every_walks_the_goals_in_order_and_drops_the_stale_warm_start(tiny_wm):
    goals = [image(100), image(101), image(102)]
    mpc = make_mpc(tiny_wm)
    policy = PlannerPolicy(mpc, goals, switch_every=2)
    seen = []
    for t in range(7):
        policy.executed(policy.act(Obs(t)))
        seen.append(policy.energy_goal)
        z_goal = tiny_wm.encode(goals[policy.current_goal])
        torch.testing.assert_close(mpc.z_goal, z_goal)
    assert seen == [0, 0, 1, 1, 2, 2, 2]
    # The first plan toward each new goal starts cold; the others are warm-started.
    warm = [init is not None for init in mpc.planner.inits]
    assert warm == [False, True, False, True, False, True, True]


def test_switch_every_can_give_each_subgoal_its_own_share(tiny_wm):
    policy = PlannerPolicy(make_mpc(tiny_wm), [image(100), image(101), image(102)], switch_every=[3, 1])
    seen = []
    for t in range(6):
        policy.executed(policy.act(Obs(t)))
        seen.append(policy.energy_goal)
    assert seen == [0, 0, 0, 1, 2, 2]
    with pytest.raises(ValueError, match="one per sub-goal"):
        PlannerPolicy(make_mpc(tiny_wm), [image(1), image(2), image(3)], switch_every=[3])


def test_switch_energy_moves_on_as_soon_as_the_plan_is_good_enough(tiny_wm):
    goals = [image(100), image(101)]
    policy = PlannerPolicy(make_mpc(tiny_wm), goals, switch_energy=float("inf"))
    policy.executed(policy.act(Obs(0)))
    assert policy.current_goal == 1 and policy.energy_goal == 0 and not policy.energy_is_final
    policy.executed(policy.act(Obs(1)))
    assert policy.current_goal == 1 and policy.energy_is_final
    never = PlannerPolicy(make_mpc(tiny_wm), goals, switch_energy=-1.0)
    for t in range(3):
        never.executed(never.act(Obs(t)))
    assert never.current_goal == 0


def test_single_goal_and_bad_rules(tiny_wm):
    single = PlannerPolicy(make_mpc(tiny_wm), image(5))
    single.act(Obs(0))
    assert len(single.goals) == 1 and single.energy_is_final and single.current_goal == 0
    with pytest.raises(ValueError, match="at least one goal"):
        PlannerPolicy(make_mpc(tiny_wm), [])
    with pytest.raises(ValueError, match="switching rule"):
        PlannerPolicy(make_mpc(tiny_wm), [image(1), image(2)])
    with pytest.raises(ValueError, match="switch_every"):
        PlannerPolicy(make_mpc(tiny_wm), [image(1), image(2)], switch_every=0)


def test_energy_stop_waits_for_the_final_goal(tiny_wm):
    """An energy threshold that every plan meets stops the episode on the first step planned against
    the final goal, not on a sub-goal."""
    driver = SimDriver("reach", image_size=32, seed=3)
    obs = driver.reset()
    policy = PlannerPolicy(make_mpc(tiny_wm), [image(100), image(101), image(102)], switch_every=2)
    result = run_episode(driver, policy, obs, 20, stop_on_success=False, energy_threshold=float("inf"), log=None)
    assert (result.steps, result.stopped_by) == (5, "energy")
    driver.close()
