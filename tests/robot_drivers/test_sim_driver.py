import numpy as np
import pytest

from vjepa_planning.robot_drivers import Observation, RobotDriver
from vjepa_planning.robot_drivers.base import SimCapabilities
from vjepa_planning.robot_drivers.safety import SafetyLimits
from vjepa_planning.robot_drivers.sim_driver import SimDriver


@pytest.fixture(scope="module")
def driver():
    d = SimDriver(task="reach", image_size=48, seed=2)
    yield d
    d.close()


def test_sim_driver_satisfies_the_protocol(driver):
    assert isinstance(driver, RobotDriver)
    obs = driver.reset()
    assert isinstance(obs, Observation)
    assert obs.image.shape == (48, 48, 3) and obs.state.shape == (7,) and obs.timestamp == 0.0
    assert {"ee_pos", "cube_pos", "success", "distance"} <= set(obs.info)
    assert isinstance(driver, SimCapabilities)
    assert driver.step_budget == driver.env.max_steps and driver.control_hz == pytest.approx(4.0)
    assert len(driver.subgoal_images()) == 1 and driver.goal_image().shape == (48, 48, 3)  # reach: the goal only


def test_act_returns_what_was_sent_after_clamping(driver):
    obs = driver.reset()
    sent = driver.act(np.array([0.5, 0, 0, 0, 0, 0, 0]))  # 50 cm: far above the per-step clamp
    assert sent[0] == pytest.approx(0.075) and driver.last_safety.clamped
    after = driver.observe()
    assert after.state[0] - obs.state[0] == pytest.approx(0.075, abs=0.006)
    assert after.timestamp == pytest.approx(0.25)


def test_nan_action_holds_still(driver):
    obs = driver.reset()
    sent = driver.act(np.full(7, np.nan))
    assert np.all(sent == 0)
    np.testing.assert_allclose(driver.observe().state[:3], obs.state[:3], atol=2e-3)


def test_workspace_box_is_enforced_in_the_sim():
    d = SimDriver(task="reach", image_size=32, seed=0, limits=SafetyLimits(workspace_high=(0.8, 0.4, 0.35)))
    d.reset()
    for _ in range(8):
        d.act(np.array([0, 0, 0.075, 0, 0, 0, 0]))
    assert d.observe().state[2] <= 0.35 + 0.005
    d.close()


def test_stop_refuses_further_motion_until_reset(driver):
    driver.reset()
    driver.stop()
    with pytest.raises(RuntimeError, match="after stop"):
        driver.act(np.zeros(7))
    driver.reset()
    driver.act(np.zeros(7))


def test_observation_validates_its_fields():
    with pytest.raises(ValueError, match="uint8"):
        Observation(image=np.zeros((4, 4, 3), np.float32), state=np.zeros(7), timestamp=0.0)
    with pytest.raises(ValueError, match=r"\(7,\)"):
        Observation(image=np.zeros((4, 4, 3), np.uint8), state=np.zeros(6), timestamp=0.0)
