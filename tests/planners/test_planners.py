"""Planners against a toy world model whose optimum is known: the latent is a fixed random embedding of
the end-effector position, and rollout integrates the actions exactly."""

import logging

import pytest
import torch

from vjepa_planning.planners import CEMPlanner, MPPIPlanner, PlannerConfig, l1_energy, make_planner

N, D = 4, 16


class ToyWorldModel:
    def __init__(self, poison: bool = False):
        g = torch.Generator().manual_seed(0)
        self.proj = torch.randn(3, N * D, generator=g)
        self.poison = poison
        self.calls = 0

    def embed(self, pos: torch.Tensor) -> torch.Tensor:  # [..., 3] -> [..., N, D], layer-normed
        z = torch.tanh(pos @ self.proj * 3).reshape(*pos.shape[:-1], N, D)
        return torch.nn.functional.layer_norm(z, (D,))

    def rollout(self, z, state, actions):
        self.calls += 1
        pos = state[:, :3] + torch.cumsum(actions[..., :3], dim=1)  # [K, H, 3]
        out = self.embed(pos)
        if self.poison:
            out = out * float("nan")
        return out


START = torch.tensor([0.5, 0.0, 0.3, 3.14, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
def test_planner_finds_a_reachable_goal(planner_cls):
    wm = ToyWorldModel()
    goal_pos = START[:3] + torch.tensor([0.06, -0.04, 0.05])  # reachable in 2 steps of <= 0.05 per axis
    cfg = PlannerConfig(horizon=2, num_samples=200, iterations=10, num_elites=15, seed=0)
    result = planner_cls(wm, cfg).plan(wm.embed(START[:3])[None], START, wm.embed(goal_pos)[None])
    reached = START[:3] + result.actions[:, :3].sum(0)
    assert torch.linalg.norm(reached - goal_pos) < 0.01
    assert result.iteration_energies[-1] < result.iteration_energies[0]
    assert wm.calls == cfg.iterations  # one batched rollout per iteration, never per candidate


def test_actions_respect_bounds_and_rotation_is_held():
    wm = ToyWorldModel()
    far_goal = START[:3] + torch.tensor([1.0, 1.0, -1.0])
    cfg = PlannerConfig(horizon=3, num_samples=64, iterations=4, num_elites=8, max_translation=0.04, gripper_cost=0.0, seed=1)
    result = CEMPlanner(wm, cfg).plan(wm.embed(START[:3])[None], START, wm.embed(far_goal)[None])
    assert torch.all(result.actions[:, :3].abs() <= 0.04 + 1e-7)
    assert torch.all(result.actions[:, 3:6] == 0)
    # Pushes at the bound toward the goal on every axis.
    assert torch.all(torch.sign(result.actions[0, :3]) == torch.tensor([1.0, 1.0, -1.0]))


def test_non_finite_energy_never_becomes_an_action(caplog):
    wm = ToyWorldModel(poison=True)
    cfg = PlannerConfig(horizon=2, num_samples=16, iterations=2, num_elites=4, seed=0)
    with caplog.at_level(logging.WARNING):
        result = MPPIPlanner(wm, cfg).plan(wm.embed(START[:3])[None], START, wm.embed(START[:3])[None])
    assert result.fallback and torch.all(result.actions == 0)
    assert "non-finite" in caplog.text


def test_warm_start_shifts_the_previous_mean():
    wm = ToyWorldModel()
    cfg = PlannerConfig(horizon=3, num_samples=32, iterations=1, num_elites=4, seed=0)
    planner = CEMPlanner(wm, cfg)
    prev = planner.plan(wm.embed(START[:3])[None], START, wm.embed(START[:3] + 0.1)[None])
    mean, _ = planner._initial_distribution(prev, "cpu")
    torch.testing.assert_close(mean[:2], prev.mean[1:])
    assert torch.all(mean[2] == 0)


def test_all_steps_energy_sums_over_the_horizon():
    pred = torch.zeros(2, 3, N, D)
    pred[1, 0] = 1.0  # candidate 1 is off only at the first step
    goal = torch.zeros(1, N, D)
    assert torch.equal(l1_energy(pred, goal), torch.zeros(2))
    assert l1_energy(pred, goal, all_steps=True).tolist() == [0.0, 1.0]


def test_bad_configs_and_names_are_refused():
    with pytest.raises(ValueError, match="num_elites"):
        PlannerConfig(num_samples=8, num_elites=9)
    with pytest.raises(ValueError, match="unknown planner"):
        make_planner("gradient", ToyWorldModel(), PlannerConfig())


def test_the_observation_context_is_built_once_per_plan():
    """A world model offering rollout_context gets it once per plan(), then one rollout_from per iteration."""

    class ContextCounting(ToyWorldModel):
        contexts = 0

        def rollout_context(self, z, state, past_actions=None):
            self.contexts += 1
            return (z, state)

        def rollout_from(self, context, actions):
            return self.rollout(*context, actions)

    wm = ContextCounting()
    cfg = PlannerConfig(horizon=2, num_samples=32, iterations=4, num_elites=4, seed=0)
    z0 = wm.embed(START[:3])[None]
    CEMPlanner(wm, cfg).plan(z0, START[None], wm.embed(START[:3] + 0.02)[None])
    assert (wm.contexts, wm.calls) == (1, 4)


@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
def test_gripper_cost_keeps_a_gripper_the_images_do_not_see(planner_cls):
    """The toy latent ignores the gripper: without a cost its delta is noise, with one it is held near 0."""
    wm = ToyWorldModel()
    goal = wm.embed(START[:3] + torch.tensor([0.03, 0.0, 0.0]))[None]
    z0 = wm.embed(START[:3])[None]
    grips = {}
    for cost in (0.0, 0.05):
        cfg = PlannerConfig(horizon=2, num_samples=128, iterations=6, num_elites=8, gripper_cost=cost, seed=3)
        grips[cost] = planner_cls(wm, cfg).plan(z0, START, goal).actions[:, 6].abs().max().item()
    assert grips[0.05] < 0.1  # inside the controller's dead band: "keep"
    assert grips[0.0] > grips[0.05]


@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
def test_the_goal_images_gripper_steers_a_gripper_the_images_do_not_see(planner_cls):
    """The toy latent ignores the gripper; told how closed the goal's hand is, the planner closes or opens it
    toward that (and keeps moving toward the goal), and leaves it alone when nobody can tell."""
    wm = ToyWorldModel()
    goal = wm.embed(START[:3] + torch.tensor([0.03, 0.0, 0.0]))[None]
    z0 = wm.embed(START[:3])[None]
    cfg = PlannerConfig(horizon=2, num_samples=128, iterations=6, num_elites=8, gripper_goal_weight=0.05, seed=3)
    planner = planner_cls(wm, cfg)
    closing = planner.plan(z0, START, goal, goal_gripper=1.0).actions
    assert closing[:, 6].sum() > 0.8 and closing[0, 0] > 0.01
    closed = START.clone()
    closed[6] = 1.0
    opening = planner.plan(z0, closed, goal, goal_gripper=0.0).actions
    assert opening[:, 6].sum() < -0.8
    assert planner.plan(z0, START, goal, goal_gripper=None).actions[:, 6].abs().max() < 0.2  # the gripper cost alone: little


def test_imagined_gripper_is_clipped_at_every_step():
    from vjepa_planning.planners.base import imagined_gripper

    deltas = torch.tensor([[0.8, 0.8], [0.8, -0.5], [-0.5, 0.3], [0.0, 0.0]])
    assert torch.allclose(imagined_gripper(0.4, deltas), torch.tensor([1.0, 0.5, 0.3, 0.4]))


def test_reseed_makes_plans_repeat():
    wm = ToyWorldModel()
    cfg = PlannerConfig(horizon=2, num_samples=16, iterations=2, num_elites=4, seed=0)
    planner = CEMPlanner(wm, cfg)
    z0, goal = wm.embed(START[:3])[None], wm.embed(START[:3] + 0.03)[None]
    planner.reseed(5)
    first = planner.plan(z0, START, goal).actions
    assert not torch.equal(planner.plan(z0, START, goal).actions, first)  # the noise moved on
    planner.reseed(5)
    assert torch.equal(planner.plan(z0, START, goal).actions, first)
