"""The one control loop and the policies it runs (control/loop.py), on the real sim."""

import numpy as np
import pytest

from vjepa_planning.control.loop import (PlannerPolicy, Policy, PolicyStep, RandomPolicy, ScenePolicy, make_policy, oracle_policy,
                                        run_episode, step_line, steps)
from vjepa_planning.planners import CEMPlanner, PlannerConfig
from vjepa_planning.planners.mpc import LatentMPC, SubgoalMPC
from vjepa_planning.robot_drivers.sim_driver import SimDriver


@pytest.fixture(scope="module")
def driver():
    d = SimDriver("reach", image_size=32, seed=3)
    yield d
    d.close()


def image(seed):
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)


class Pushy(Policy):
    """Asks for 30 cm along x every step and remembers what it was told was executed."""

    def __init__(self):
        self.told = []

    def act(self, obs):
        return PolicyStep(np.array([0.3, 0, 0, 0, 0, 0, 0.0]), energy=1.0)

    def executed(self, sent):
        self.told.append(sent.copy())


def test_the_policy_is_told_what_the_safety_layer_sent(driver):
    policy = Pushy()
    records = list(steps(driver, policy, driver.reset(seed=1), 3, success_steps=None))
    assert [r.step for r in records] == [1, 2, 3] and [r.stop for r in records] == [None, None, "budget"]
    for r, told in zip(records, policy.told):
        np.testing.assert_array_equal(told, r.sent)
        assert r.sent[0] <= 0.075 + 1e-12 and r.safety.clamped  # clamped from 0.3 m
        assert r.choose_seconds >= 0 and r.robot_seconds > 0


def test_success_steps_counts_successful_steps_before_stopping(driver):
    """The oracle reaches the goal; with success_steps=3 the loop runs until the third successful step."""
    obs = driver.reset(seed=4)
    records = list(steps(driver, oracle_policy(driver), obs, driver.step_budget, success_steps=3))
    flags = [bool(r.obs.info["success"]) for r in records]
    assert records[-1].stop == "success" and sum(flags) == 3 and flags[-1]
    first = list(steps(driver, oracle_policy(driver), driver.reset(seed=4), driver.step_budget))
    assert len(first) == flags.index(True) + 1  # success_steps=1: the first success ends it (the sim is deterministic)


def test_energy_stop_waits_for_the_final_goal(tiny_wm, driver):
    """An energy threshold that every plan meets stops the episode on the first step planned against the
    final goal (step 5: two steps on each of two sub-goals), not on a sub-goal."""
    planner = CEMPlanner(tiny_wm, PlannerConfig(horizon=2, num_samples=8, iterations=1, num_elites=2, seed=0))
    mpc = SubgoalMPC(LatentMPC(tiny_wm, planner, context_frames=2), [image(100), image(101), image(102)], switch_every=2)
    lines = []
    result = run_episode(driver, PlannerPolicy(mpc), driver.reset(), 20, success_steps=None, energy_threshold=float("inf"), log=lines.append)
    assert (result.steps, result.stopped_by) == (5, "energy") and len(result.energies) == 5
    assert [line.split("goal ")[1].split()[0] for line in lines] == ["1/3", "1/3", "2/3", "2/3", "3/3"]


class Recorder:
    def __init__(self):
        self.rows, self.finished = 0, False

    def record(self, sent, obs):
        self.rows += 1

    def finish(self):
        self.finished = True


class Dropping(SimDriver):
    """A sim whose connection 'drops' on the third act."""

    def act(self, action):
        if self.env.steps == 2:
            raise ConnectionError("robot went away")
        return super().act(action)


def test_the_recorder_is_finished_when_the_robot_fails_mid_episode():
    d, recorder = Dropping("reach", image_size=32, seed=0), Recorder()
    with pytest.raises(ConnectionError):
        run_episode(d, RandomPolicy(0), d.reset(), 10, recorder=recorder, log=None)
    assert recorder.rows == 2 and recorder.finished
    d.close()


def test_privileged_policies_need_the_in_process_sim():
    class ArmOnly:  # what a real arm offers: the RobotDriver verbs, no scene
        last_safety, step_budget = None, None

        def reset(self, seed=None, episode=None): ...
        def observe(self): ...
        def act(self, action): ...
        def stop(self): ...
        def close(self): ...

    with pytest.raises(ValueError, match="in-process sim"):
        oracle_policy(ArmOnly())
    with pytest.raises(ValueError, match="in-process sim"):
        ScenePolicy(ArmOnly(), scripted=None)


def test_step_line_names_the_goal_only_with_sub_goals(driver):
    obs = driver.reset()
    (r,) = steps(driver, RandomPolicy(1), obs, 1)
    assert "goal" not in step_line(r).split("distance")[0] and "energy" not in step_line(r)
    r.decision = PolicyStep(r.decision.action, energy=0.5, goal=1, goals=3)
    assert "energy 0.5000  goal 2/3" in step_line(r)


def test_the_readme_python_example_runs():
    """The README's control-loop example, as written, on a 2-step budget with an eager rollout (compiling
    for two steps would take most of the test's time)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "run_episode" in c]
    assert "budget=driver.step_budget" in code
    scope = {}
    assert 'compose_config("plan_goal")' in code
    code = code.replace('compose_config("plan_goal")', 'compose_config("plan_goal", ["world_model.compile=false"])')
    exec(code.replace("budget=driver.step_budget", "budget=2").replace("print(", "_ = ("), scope)  # noqa: S102
    assert scope["result"].steps == 2 and len(scope["result"].energies) == 2
    scope["driver"].close()


def test_make_policy_builds_each_named_policy_and_refuses_the_rest(tiny_wm, driver):
    """The `policy` names plan-goal and sim-benchmark share: the planner walks the goals it is given, the
    oracle and the random floor need no model, and a typo or a planner without its MPC is refused."""
    driver.reset(seed=4)
    mpc = LatentMPC(tiny_wm, CEMPlanner(tiny_wm, PlannerConfig(horizon=2, num_samples=8, iterations=1, num_elites=2, seed=0)))
    planner = make_policy("planner", driver, seed=0, mpc=mpc, goals=[image(100), image(101)], budget=6)
    assert isinstance(planner, PlannerPolicy) and planner.mpc.switch_every == [3]  # an even share of the budget
    assert isinstance(make_policy("oracle", driver, seed=0), ScenePolicy)
    a, b = (make_policy("random", driver, seed=5).act(None).action for _ in range(2))
    np.testing.assert_array_equal(a, b)  # the seed fixes the floor's actions
    with pytest.raises(ValueError, match="needs the world-model MPC"):
        make_policy("planner", driver, seed=0, goals=[image(100)])
    with pytest.raises(ValueError, match="policy must be one of planner, oracle, random, got 'orcale'"):
        make_policy("orcale", driver, seed=0)
