"""benchmarks/world_model_quality.py: phase labels on real sim episodes, and the scoring checked against world
models whose answers are known (one that predicts the real next frame exactly, one blind to actions)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vjepa_planning.worldmodel.state_math import integrate_state

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "world_model_quality.py"
_spec = importlib.util.spec_from_file_location("world_model_quality", _PATH)
wmq = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = wmq  # dataclasses look their module up
_spec.loader.exec_module(wmq)


class StateWorldModel:
    """A world model whose 'embedding' of frame t is the robot state at t ([1, 1, 7]), read from a table by
    the frame's first pixel: `exact` rolls the state forward with the action (so it predicts the real next
    frame of any executed action exactly), otherwise it ignores the actions."""

    def __init__(self, states: np.ndarray, exact: bool):
        self.states = torch.tensor(states, dtype=torch.float32)
        self.exact = exact

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        return self.states[torch.as_tensor(frames[:, 0, 0, 0].astype(np.int64))][:, None]  # [B, 1, 7]

    def rollout_context(self, z, state, past_actions=None):
        return state[:, -1] if state.ndim == 3 else state  # [1, 7]

    def rollout_from(self, ctx, actions: torch.Tensor) -> torch.Tensor:
        out, s = [], ctx.expand(actions.shape[0], 7)
        for k in range(actions.shape[1]):
            s = integrate_state(s, actions[:, k]) if self.exact else s
            out.append(s[:, None])  # [B, 1, 7] as [N = 1, D = 7]
        return torch.stack(out, dim=1)  # [B, H, 1, 7]


def synthetic_episode(T: int = 6) -> wmq.Episode:
    """States that follow their actions exactly (no gripper clipping), frames indexed by their step."""
    rng = np.random.default_rng(0)
    actions = [np.array([*rng.uniform(-0.04, 0.04, 3), 0, 0, 0, 0.3]) for _ in range(T)]
    states = [np.array([0.45, 0.0, 0.2, np.pi, 0.0, 0.0, 0.0])]
    for a in actions:
        states.append(integrate_state(torch.tensor(states[-1]), torch.tensor(a)).numpy())
    images = [np.full((4, 4, 3), t, np.uint8) for t in range(T + 1)]
    ep = wmq.Episode("grasp", images, states, actions, ["approach"] * T, [0] * T, goals=[images[-1]])
    return ep, np.stack(states)


def test_an_exact_model_ranks_the_executed_action_first_and_finds_the_argmin():
    ep, states = synthetic_episode()
    rows = wmq.score_episode(StateWorldModel(states, exact=True), ep, context_frames=2)
    assert len(rows) == len(ep.actions) - 1
    for r in rows:
        assert r["l1_model"] == pytest.approx([0.0, 0.0], abs=1e-6)
        assert min(r["l1_copy"]) > 0
        assert r["top1_future"] and r["grip_future"]
        # the grid's best point is the one nearest the executed move: the error equals the grid's floor
        assert r["argmin_error_cm"] == pytest.approx(r["grid_floor_cm"], abs=1e-4)
    s = wmq.summarise(rows)["approach"]
    assert s["top1_future"] == 1.0 and s["l1_ratio"][0] == pytest.approx(0.0, abs=1e-5)


def test_a_model_blind_to_actions_never_ranks_first():
    ep, states = synthetic_episode()
    rows = wmq.score_episode(StateWorldModel(states, exact=False), ep, context_frames=1)
    assert not any(r["top1_future"] or r["grip_future"] or r["top1_goal"] for r in rows)
    assert all(r["l1_model"][0] == pytest.approx(r["l1_copy"][0], abs=1e-6) for r in rows)
    assert "| approach | 5 |" in wmq.markdown_table(wmq.summarise(rows))


def test_ranking_candidates_flip_the_gripper_and_nudge_each_axis():
    executed = np.array([0.01, 0.0, -0.02, 0, 0, 0, 1.0])
    c = wmq.ranking_candidates(executed, gripper_now=0.0)
    assert c.shape == (8, 7) and (c[0] == executed).all()
    assert c[1, 6] == -1.0 and (c[1, :6] == executed[:6]).all()  # closing -> opening instead
    assert wmq.ranking_candidates(executed * 0, gripper_now=0.0)[1, 6] == 1.0  # staying open -> closing
    np.testing.assert_allclose(np.abs(c[2:, :3] - executed[:3]).sum(1), wmq.NUDGE)


@pytest.mark.parametrize("task", ["grasp", "pick_and_place"])
def test_real_oracle_episodes_are_labelled_in_phase_order(task):
    ep = wmq.collect_episode(task, seed=3000, image_size=32, camera="workspace", noise=0.0)
    assert len(ep.images) == len(ep.actions) + 1 == len(ep.phases) + 1
    order = {"grasp": ["approach", "close", "lift"], "pick_and_place": ["approach", "close", "lift", "carry", "release"]}
    seen = [p for i, p in enumerate(ep.phases) if i == 0 or p != ep.phases[i - 1]]
    assert seen == order[task]
    # each phase plans toward its stage's photo: the open hand around the cube first, the final goal last
    assert ep.goal_index[0] == 0 and ep.goal_index[-1] == len(ep.goals) - 1 == (2 if task == "grasp" else 3)
    assert ep.goal_index[ep.phases.index("close")] == 1  # the close phase aims at the closed-hand photo


def test_the_planners_gripper_term_decides_where_the_embedding_cannot():
    """Blind to actions, the embedding ties the executed and the gripper-flipped action; with a readout of the
    goal photo the planner's energy prefers whichever moves the gripper toward the photo's."""

    class Reading(StateWorldModel):
        def __init__(self, states, closed):
            super().__init__(states, exact=False)
            self.closed = closed

        def gripper_closed(self, frames):
            return torch.full((len(frames),), self.closed)

    ep, states = synthetic_episode()  # every executed action closes the hand by 0.3 (to 1 at most)

    def toward(t: int, closed: float) -> bool:  # does the executed action leave the gripper nearer the photo's?
        g, (executed, flipped) = states[t][6], wmq.ranking_candidates(ep.actions[t], states[t][6])[:2]
        return abs(np.clip(g + executed[6], 0, 1) - closed) < abs(np.clip(g + flipped[6], 0, 1) - closed)

    for closed in (1.0, 0.0):
        rows = wmq.score_episode(Reading(states, closed), ep, context_frames=1, gripper_goal_weight=0.05)
        assert [r["grip_goal_plan"] for r in rows] == [toward(r["step"], closed) for r in rows]
        assert not any(r["grip_goal"] for r in rows)
    assert len({toward(t, 1.0) for t in range(len(ep.actions) - 1)}) == 2  # both answers occur
    rows = wmq.score_episode(Reading(states, 1.0), ep, context_frames=1)  # no weight: the embedding alone
    assert not any(r["grip_goal_plan"] for r in rows)
