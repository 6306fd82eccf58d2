"""Episode specs come from files and off the network: every field is checked before anything moves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vjepa_planning.envs import TASKS, make_task_env
from vjepa_planning.envs.tasks import EpisodeSpec
from vjepa_planning.robot_drivers.safety import SafetyLimits
from vjepa_planning.robot_drivers.sim_driver import SimDriver

BOX = SafetyLimits()


@pytest.fixture(scope="module")
def good() -> dict:
    env = make_task_env("grasp", image_size=32)
    env.reset(seed=5)
    spec = json.loads(env.spec_.to_json())
    env.close()
    return spec


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_tasks_sampled_specs_pass_and_round_trip(task):
    env = make_task_env(task, image_size=32)
    for seed in range(20):
        env.reset(seed=seed)
        spec = EpisodeSpec.from_json(env.spec_.to_json())
        spec.check_reachable(BOX.workspace_low, BOX.workspace_high)
        assert spec == env.spec_
    env.close()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("start_ee", [0.5, 0.0, float("nan")], "finite"),
        ("start_ee", [0.5, 0.0], "3 numbers"),
        ("goal_ee", "up", "3 numbers"),
        ("cube_start", [0.5, True, 0.02], "finite"),
        ("start_gripper", 2.0, r"\[0, 1\]"),
        ("goal_gripper", None, "finite"),
        ("cube_yaw", 1e9, "cube_yaw"),
        ("cube_in_hand", 1, "true or false"),
        ("seed", -1, "seed"),
        ("seed", 1.5, "seed"),
        ("task", "fly", "not one of"),
        ("extra", {"a": {"b": {"c": {"d": {"e": 1}}}}}, "nested"),
        ("extra", [1], "JSON object"),
    ],
)
def test_bad_fields_are_refused_by_name(good, field, value, message):
    text = json.dumps({**good, field: value})
    with pytest.raises(ValueError, match=message) as e:
        EpisodeSpec.from_json(text)
    assert field in str(e.value) or field == "extra"


@pytest.mark.parametrize(
    "text, message",
    [("[" * 100_000 + "]" * 100_000, "characters"), ("[" * 20_000 + "]" * 20_000, "nested too deeply|JSON object"),
     ("{", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"task": "reach"}', "lacks the fields")],
)
def test_malformed_text_is_one_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        EpisodeSpec.from_json(text)


@pytest.mark.parametrize(
    "field, value",
    [("start_ee", [0.5, 0.0, -1.0]), ("goal_ee", [2.0, 0.0, 0.3]), ("cube_start", [0.5, 0.0, -0.1]), ("goal_cube", [0.5, 3.0, 0.02])],
)
def test_unreachable_specs_are_refused_before_the_sim_moves(good, field, value):
    spec = EpisodeSpec.from_json(json.dumps({**good, field: value}))  # well-formed ...
    driver = SimDriver(task="grasp", image_size=32)
    before = driver.reset(seed=1).state
    with pytest.raises(ValueError, match=field):  # ... but outside the box
        driver.reset(episode=spec)
    np.testing.assert_array_equal(driver.observe().state, before)
    driver.close()
