"""iCEM's sampling options and the gradient refinement, against the toy world model of test_planners
(latent = fixed random embedding of the end-effector position, rollout integrates the actions exactly)."""

import pytest
import torch

from vjepa_planning.planners import CEMPlanner, PlannerConfig, make_planner
from vjepa_planning.planners.noise import coloured_noise
from tests.planners.test_planners import START, ToyWorldModel


class Recording(ToyWorldModel):
    """Keeps every batch of candidates it was asked to roll out."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def rollout(self, z, state, actions):
        self.batches.append(actions.clone())
        return super().rollout(z, state, actions)


class Differentiable(ToyWorldModel):
    def rollout_differentiable(self, z, state, actions, past_actions=None):
        return self.rollout(z, state.reshape(1, 7), actions)


def _problem(wm, offset=(0.06, -0.04, 0.05)):
    goal_pos = START[:3] + torch.tensor(offset)
    return wm.embed(START[:3])[None], START, wm.embed(goal_pos)[None], goal_pos


def test_white_noise_keeps_the_random_stream_and_coloured_noise_keeps_unit_variance():
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(coloured_noise(5, 3, 7, 0.0, g1), torch.randn((5, 3, 7), generator=g2))
    x = coloured_noise(40000, 8, 1, 2.0, torch.Generator().manual_seed(1))[..., 0]  # [K, 8]
    torch.testing.assert_close(x.std(0), torch.ones(8), atol=0.03, rtol=0)
    corr = torch.corrcoef(x.T)
    assert corr[0, 1] > 0.4  # smooth along the horizon
    white = torch.corrcoef(coloured_noise(40000, 8, 1, 0.0, torch.Generator().manual_seed(1))[..., 0].T)
    assert white[0, 1].abs() < 0.03


def test_sample_count_shrinks_but_never_below_two_elite_sets():
    wm = Recording()
    cfg = PlannerConfig(horizon=2, num_samples=100, iterations=6, num_elites=10, sample_decay=1.5, seed=0)
    z0, s0, goal, _ = _problem(wm)
    result = CEMPlanner(wm, cfg).plan(z0, s0, goal)
    sizes = [b.shape[0] for b in wm.batches]
    assert sizes == [cfg.samples_at(i) for i in range(6)] == [100, 67, 45, 30, 20, 20]
    assert result.candidates == sum(sizes)


def test_kept_elites_are_rescored_next_iteration_and_shifted_into_the_next_step():
    wm = Recording()
    cfg = PlannerConfig(horizon=3, num_samples=40, iterations=2, num_elites=10, keep_elites=0.3, gripper_cost=0.0, seed=0)
    planner = CEMPlanner(wm, cfg)
    z0, s0, goal, _ = _problem(wm)
    first = planner.plan(z0, s0, goal)
    assert first.elites.shape == (3, 3, 7)
    it0, it1 = wm.batches
    energies = ((wm.embed(s0[:3] + torch.cumsum(it0[..., :3], 1))[:, -1] - goal).abs().mean(dim=(1, 2)))
    best_of_it0 = it0[torch.topk(energies, 3, largest=False).indices]
    torch.testing.assert_close(it1[1:4], best_of_it0)  # slots 1.. carry the previous iteration's best
    wm.batches.clear()
    planner.plan(z0, s0, goal, init=first)
    shifted = torch.cat([first.elites[:, 1:], first.elites[:, -1:]], dim=1)
    torch.testing.assert_close(wm.batches[0][1:4], shifted)


def test_early_stop_once_the_elites_stop_improving():
    wm = Recording()
    z0, s0, goal, goal_pos = _problem(wm)
    full = CEMPlanner(wm, PlannerConfig(horizon=2, num_samples=200, iterations=12, num_elites=15, seed=0)).plan(z0, s0, goal)
    stopped = CEMPlanner(wm, PlannerConfig(horizon=2, num_samples=200, iterations=12, num_elites=15, stop_tol=0.02, seed=0)).plan(z0, s0, goal)
    assert len(full.iteration_energies) == 12 and 2 <= len(stopped.iteration_energies) < 12
    assert stopped.candidates < full.candidates
    reached = START[:3] + stopped.actions[:, :3].sum(0)
    assert torch.linalg.norm(reached - goal_pos) < 0.02  # stopping early still lands near the goal


def test_gradient_refinement_lowers_the_energy_of_a_rough_plan():
    wm = Differentiable()
    z0, s0, goal, goal_pos = _problem(wm, (0.03, -0.02, 0.02))
    rough = PlannerConfig(horizon=2, num_samples=8, iterations=1, num_elites=4, seed=0)
    base = CEMPlanner(wm, rough).plan(z0, s0, goal)
    refined = CEMPlanner(wm, PlannerConfig(**{**rough.__dict__, "grad_steps": 30, "grad_lr": 0.003})).plan(z0, s0, goal)

    def distance(plan):
        return float(torch.linalg.norm(START[:3] + plan.actions[:, :3].sum(0) - goal_pos))

    assert distance(refined) < distance(base) - 0.005
    assert torch.all(refined.actions[:, 3:6] == 0)  # held dimensions stay held
    assert torch.all(refined.actions[:, :3].abs() <= rough.max_translation + 1e-7)


def test_gradient_refinement_needs_a_differentiable_world_model():
    wm = ToyWorldModel()
    z0, s0, goal, _ = _problem(wm)
    with pytest.raises(ValueError, match="differentiable rollout"):
        CEMPlanner(wm, PlannerConfig(horizon=2, num_samples=8, iterations=1, num_elites=2, grad_steps=1)).plan(z0, s0, goal)


def test_the_real_world_model_rollout_is_differentiable_and_matches_rollout(tiny_wm):
    z = tiny_wm.encode(torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8).numpy())[None]  # [1, 3, N, D]
    state = torch.zeros(1, 3, 7)
    past = torch.zeros(1, 2, 7)
    actions = (0.01 * torch.randn(2, 2, 7)).requires_grad_(True)
    out = tiny_wm.rollout_differentiable(z, state, actions, past_actions=past)
    out.abs().sum().backward()
    assert actions.grad is not None and actions.grad.abs().sum() > 0
    torch.testing.assert_close(out.detach(), tiny_wm.rollout(z, state, actions.detach(), past_actions=past))


@pytest.mark.parametrize("preset", ["icem", "cem_grad", "mppi"])
def test_presets_inherit_cem_and_build(preset, tiny_wm):
    from vjepa_planning.configs import compose_config
    from vjepa_planning.control.build import make_mpc

    cem = compose_config("plan_goal", ["planner=cem"]).planner
    cfg = compose_config("plan_goal", [f"planner={preset}"]).planner
    assert cfg.name == preset and cfg.num_samples == cem.num_samples and cfg.horizon == cem.horizon
    mpc = make_mpc(tiny_wm, cfg)
    assert mpc.planner.cfg.noise_beta == cfg.noise_beta and mpc.planner.cfg.grad_steps == cfg.grad_steps
    assert make_planner(cfg.name, tiny_wm, mpc.planner.cfg).cfg == mpc.planner.cfg


def test_an_unknown_planner_setting_is_refused():
    from vjepa_planning.control.build import planner_config

    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['num_sample'\]"):
        planner_config({"name": "cem", "context_frames": 4, "num_sample": 64})
    assert planner_config({"name": "cem", "context_frames": 4, "num_samples": 64}).num_samples == 64


def test_plain_cem_never_rolls_out_more_than_num_samples():
    cfg = PlannerConfig(horizon=2, num_samples=16, iterations=3, num_elites=12)
    assert [cfg.samples_at(i) for i in range(3)] == [16, 16, 16]
