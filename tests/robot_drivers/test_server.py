"""The robot server with the sim backend, through the remote driver and through raw sockets: the driver
contract, server-side safety, the watchdog, access control, and fuzzed/oversized/malformed messages."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.base import RobotDriver, SimCapabilities
from vjepa_planning.robot_drivers.factory import make_driver
from vjepa_planning.robot_drivers.protocol import (
    PROTOCOL_NAME,
    RemoteRobotError,
    RobotConnectionError,
    encode_request,
    packb,
)
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
from vjepa_planning.robot_drivers.safety import SafetyLimits
from vjepa_planning.robot_drivers.server import RobotServer
from server_process import raw_request

IMAGE = 64
SECRET = b"test-secret-0123456789abcdef-xyz"


def sim_backend(**kw):
    return lambda: SimBackend(task=kw.pop("task", "reach"), image_size=IMAGE, **kw)


@pytest.fixture(scope="module")
def server():
    with RobotServer(sim_backend(), port=0, watchdog_s=0) as srv:
        yield srv


@pytest.fixture
def driver(server):
    d = RemoteDriver("127.0.0.1", server.port, timeout_s=5.0)
    yield d
    d.close()


# ---- the contract every driver passes (also run against the franky backend in test_franky_backend.py) ----


def driver_contract(driver: RobotDriver, step: float = 0.02, pos_tol: float = 0.01, max_translation: float = 0.075,
                    backend: bool = False) -> None:
    """What every driver does; with `backend`, what a robot server's backend does: the same, except that it
    executes what the server's safety layer let through (the one layer on that path) and refuses a
    non-finite action instead of filtering it."""
    obs = driver.reset()
    assert obs.image.dtype == np.uint8 and obs.image.ndim == 3 and obs.image.shape[2] == 3
    s0 = obs.state
    assert s0.shape == (7,) and np.all(np.isfinite(s0)) and 0.0 <= s0[6] <= 1.0
    assert -np.pi / 2 <= s0[3] < 3 * np.pi / 2 and -np.pi <= s0[4] < np.pi and -np.pi <= s0[5] < np.pi
    # every translation axis moves the way the base-frame action says
    for axis in range(3):
        for sign in (1.0, -1.0):
            before = driver.observe().state
            action = np.zeros(7)
            action[axis] = sign * step
            sent = driver.act(action)
            np.testing.assert_allclose(sent, action, atol=1e-9)
            moved = driver.observe().state[:3] - before[:3]
            assert abs(moved[axis] - sign * step) < pos_tol, (axis, sign, moved)
            assert np.all(np.abs(np.delete(moved, axis)) < pos_tol), (axis, sign, moved)
    if backend:
        with pytest.raises(ValueError, match="finite"):
            driver.act(np.full(7, np.nan))
    else:  # the safety layer answers with the action it actually sent
        sent = driver.act(np.array([1.0, 0, 0, 0, 0, 0, 0]))
        assert 0 < sent[0] <= max_translation + 1e-9
        assert np.all(driver.act(np.full(7, np.nan)) == 0)
    driver.stop()
    with pytest.raises(Exception, match="stop"):
        driver.act(np.zeros(7))
    assert driver.observe().state.shape == (7,)  # observing still works after a stop
    driver.reset()
    driver.act(np.zeros(7))


def test_remote_sim_passes_the_driver_contract(driver):
    assert isinstance(driver, RobotDriver)
    driver_contract(driver)


def test_in_process_sim_driver_passes_the_same_contract():
    from vjepa_planning.robot_drivers.sim_driver import SimDriver

    d = SimDriver(image_size=IMAGE)
    try:
        driver_contract(d)
    finally:
        d.close()


def test_make_driver_builds_a_working_remote_driver(server):
    env_cfg = {"task": "reach", "image_size": IMAGE, "seed": 3, "max_steps": None}
    driver_cfg = {"type": "remote", "host": "127.0.0.1", "port": server.port, "timeout_s": 5.0, "retries": 1, "heartbeat": False}
    with make_driver(driver_cfg, env_cfg) as d:
        assert isinstance(d, RemoteDriver)
        obs = d.reset()
        assert obs.image.shape == (IMAGE, IMAGE, 3)
        assert d.episode_spec.seed == 3 and d.episode_spec.task == "reach"


def test_remote_sim_matches_the_in_process_sim_exactly(driver):
    """Same seed, same actions: the remote and the in-process sim report the same states and images."""
    from vjepa_planning.robot_drivers.sim_driver import SimDriver

    local = SimDriver(image_size=IMAGE, seed=11)
    try:
        a, b = local.reset(), driver.reset(seed=11, task="reach")
        for action in ([0.03, 0, -0.02, 0, 0, 0.05, 0], [0, 0.03, 0, 0.05, 0, 0, 1.0]):
            np.testing.assert_array_equal(a.state, b.state)
            np.testing.assert_array_equal(a.image, b.image)
            np.testing.assert_array_equal(local.act(action), driver.act(action))
            a, b = local.observe(), driver.observe()
        assert a.info["success"] == b.info["success"] and a.info["distance"] == b.info["distance"]
    finally:
        local.close()


def test_reset_with_episode_spec_and_task_switch_and_goal_image(driver):
    from vjepa_planning.envs import make_task_env

    env = make_task_env("grasp", image_size=IMAGE)
    try:
        env.reset(seed=5)
        spec = env.spec_
        goal = env.goal_image()
    finally:
        env.close()
    obs = driver.reset(episode=spec)  # the spec names the grasp task: the server switches scenes
    assert driver.episode_spec == spec
    np.testing.assert_allclose(obs.state[:3], spec.start_ee, atol=0.01)
    np.testing.assert_array_equal(driver.goal_image(), goal)
    driver.reset(task="reach")
    assert driver.episode_spec.task == "reach"


def test_bad_reset_arguments_are_refused_and_the_server_lives_on(driver):
    with pytest.raises(RemoteRobotError) as e:
        driver.reset(task="juggle")
    assert e.value.code == "bad_request" and "juggle" in e.value.message
    with pytest.raises(RemoteRobotError) as e:
        driver.reset(episode='{"task": "reach"}')
    assert e.value.code == "bad_request"
    assert driver.ping() < 1.0


def test_invalid_episode_specs_are_refused_before_anything_moves(driver):
    """The fault probe's specs: a hand below the table, NaN, a deeply nested spec, a gripper out of range."""
    driver.reset(seed=3)
    good = driver.episode_spec.to_json()
    before = driver.observe().state
    bad = [good.replace(f"{driver.episode_spec.start_ee[2]}", "-1.0"), good.replace('"cube_yaw": ', '"cube_yaw": NaN, "_": '),
           "[" * 30_000 + "]" * 30_000, good.replace('"start_gripper": 0.0', '"start_gripper": 3.0')]
    for text in bad:
        with pytest.raises(RemoteRobotError) as e:
            driver.reset(episode=text)
        assert e.value.code == "bad_request" and "episode spec" in e.value.message, e.value.message
        np.testing.assert_array_equal(driver.observe().state, before)
    assert driver.ping() < 1.0


def test_act_before_any_reset_is_refused():
    with RobotServer(sim_backend(), port=0, watchdog_s=0) as srv, RemoteDriver("127.0.0.1", srv.port) as d:
        with pytest.raises(RemoteRobotError) as e:
            d.act(np.zeros(7))
        assert e.value.code == "not_ready"
        assert d.observe().state.shape == (7,)


# ---- server-side safety -------------------------------------------------------------------------------


def test_server_clamps_whatever_the_client_sends():
    limits = SafetyLimits(max_translation=0.03, max_rotation=0.05, workspace_low=(0.25, -0.4, 0.01), workspace_high=(0.8, 0.4, 0.35),
                          gripper_max=0.5, max_gripper_step=0.2)
    with RobotServer(sim_backend(), port=0, watchdog_s=0, limits=limits) as srv:
        with RemoteDriver("127.0.0.1", srv.port) as d:
            d.reset(seed=1)
            assert isinstance(d, RobotDriver) and not isinstance(d, SimCapabilities)
            assert d.step_budget == srv.backend.describe()["max_steps"]  # the sim task's budget, over the wire
            sent = d.act([1.0, -1.0, 0.0, 1.0, -1.0, 0.5, 0.0])
            np.testing.assert_allclose(sent[:6], [0.03, -0.03, 0.0, 0.05, -0.05, 0.05])
            assert d.last_safety.clamped
            # the workspace box: pushing up stops at z = 0.35
            for _ in range(6):
                sent = d.act([0, 0, 0.03, 0, 0, 0, 0])
                assert d.observe().state[2] <= 0.35 + 0.005
            assert sent[2] < 0.03
            # the gripper: at most 0.2 per step and never beyond 0.5
            g_sent = [d.act([0, 0, 0, 0, 0, 0, 1.0])[6] for _ in range(4)]
            assert g_sent[0] == pytest.approx(0.2) and max(g_sent) <= 0.2 + 1e-9
            assert d.observe().state[6] <= 0.5 + 0.02


def test_server_clamps_a_raw_request_too(server):
    """No client-side code involved: a hand-made act request with a 1 m step moves at most the limit."""
    x0 = raw_request(server.port, encode_request("reset", {"seed": 2}, 8, "raw")[0])["result"]["obs"]["state"][0]
    reply = raw_request(server.port, encode_request("act", {"action": [1.0, 0, 0, 0, 0, 0, 0]}, 9, "raw")[0])
    assert reply["ok"] and reply["result"]["action"][0] == pytest.approx(0.075)
    assert raw_request(server.port, encode_request("release", {}, 10, "raw")[0])["result"]["released"]
    with RemoteDriver("127.0.0.1", server.port) as d:
        assert d.observe().state[0] - x0 < 0.075 + 0.01


# ---- watchdog -----------------------------------------------------------------------------------------


def test_watchdog_stops_the_arm_when_the_controller_goes_silent():
    with RobotServer(sim_backend(), port=0, watchdog_s=0.3) as srv:
        with RemoteDriver("127.0.0.1", srv.port, heartbeat=False) as d, RemoteDriver("127.0.0.1", srv.port, heartbeat=False) as other:
            d.reset()
            d.act([0.01, 0, 0, 0, 0, 0, 0])
            t_end = time.monotonic() + 0.8
            while time.monotonic() < t_end:  # another session's traffic does not keep the arm alive
                other.ping()
                time.sleep(0.05)
            with pytest.raises(RemoteRobotError) as e:
                d.act(np.zeros(7))
            assert e.value.code == "stopped" and "watchdog" in e.value.message
            assert srv.stats["watchdog"] == 1
            d.reset()  # a reset re-enables acting
            d.act(np.zeros(7))


def test_watchdog_is_on_time_while_other_clients_flood_the_server():
    import threading

    limit = 0.3
    with RobotServer(sim_backend(), port=0, watchdog_s=limit) as srv:
        flooding = threading.Event()
        flooding.set()

        def flood():
            with RemoteDriver("127.0.0.1", srv.port, heartbeat=False) as c:
                while flooding.is_set():
                    c.goal_image()  # a render per request

        with RemoteDriver("127.0.0.1", srv.port, heartbeat=False) as d:
            d.reset()
            loaders = [threading.Thread(target=flood) for _ in range(3)]
            for t in loaders:
                t.start()
            d.act([0.01, 0, 0, 0, 0, 0, 0])
            time.sleep(limit + 0.4)
            flooding.clear()
            for t in loaders:
                t.join(10)
        assert len(srv.watchdog_stops) == 1 and limit <= srv.watchdog_stops[0] <= limit + 0.1


def test_heartbeat_keeps_a_slow_planner_alive():
    with RobotServer(sim_backend(), port=0, watchdog_s=0.5) as srv, RemoteDriver("127.0.0.1", srv.port) as d:
        d.reset()
        d.act([0.01, 0, 0, 0, 0, 0, 0])
        time.sleep(1.6)  # "planning": more than three watchdog periods without an act
        d.act([0.01, 0, 0, 0, 0, 0, 0])
        assert srv.stats["watchdog"] == 0


# ---- access control -----------------------------------------------------------------------------------


def test_off_loopback_bind_without_curve_is_refused():
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        with pytest.raises(ValueError, match="without CURVE keys"):
            RobotServer(sim_backend(), host=host, port=0, secret=SECRET)  # a shared secret alone does not encrypt


@pytest.fixture(scope="module")
def secure_server():
    with RobotServer(sim_backend(), port=0, watchdog_s=0, secret=SECRET) as srv:
        yield srv


def test_authenticated_client_works_and_replies_are_verified(secure_server):
    with RemoteDriver("127.0.0.1", secure_server.port, secret=SECRET) as d:
        assert d.server_info["authenticated"]
        d.reset(seed=4)
        d.act([0.02, 0, 0, 0, 0, 0, 0])
        assert d.observe().image.shape == (IMAGE, IMAGE, 3)


@pytest.mark.parametrize("secret", [None, b"not-the-right-secret-at-all-0000"])
def test_requests_without_valid_credentials_are_refused_logged_and_never_move_the_arm(secure_server, secret, caplog, monkeypatch):
    monkeypatch.delenv("ROBOT_SERVER_SECRET", raising=False)
    with RemoteDriver("127.0.0.1", secure_server.port, secret=SECRET) as good:
        good.reset(seed=4)
        before = good.observe().state
        with pytest.raises(RemoteRobotError) as e:
            RemoteDriver("127.0.0.1", secure_server.port, secret=secret, secret_env=None)
        assert e.value.code == "unauthorized"
        refused = secure_server.stats["unauthorized"]
        reply = raw_request(secure_server.port, encode_request("act", {"action": np.full(7, 0.05)}, 1, "evil", secret)[0])
        assert not reply["ok"] and reply["error"]["code"] == "unauthorized"
        assert secure_server.stats["unauthorized"] == refused + 1
        np.testing.assert_array_equal(good.observe().state, before)
    assert "unauthenticated request refused" in caplog.text


def test_a_replayed_request_is_refused(secure_server):
    with RemoteDriver("127.0.0.1", secure_server.port, secret=SECRET) as good:
        good.reset(seed=4)
        before = good.observe().state
        data, nonce = encode_request("act", {"action": np.array([0.02, 0, 0, 0, 0, 0, 0])}, 1, good._sid, SECRET, server_id=secure_server.server_id)
        first = raw_request(secure_server.port, data, SECRET, nonce)
        assert first["ok"]
        second = raw_request(secure_server.port, data, SECRET, nonce)
        assert second["error"]["code"] == "unauthorized" and "replay" in second["error"]["message"]
        moved = good.observe().state[0] - before[0]
        assert moved == pytest.approx(0.02, abs=0.008)  # moved once, not twice


# ---- malformed, oversized, fuzzed ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=2048), st.builds(lambda b: packb({"p": PROTOCOL_NAME, "v": 1, "body": b}), st.binary(max_size=512))))
def test_fuzzed_messages_get_error_replies_and_never_crash_the_server(server, data):
    reply = raw_request(server.port, data)
    assert reply is not None and not reply["ok"]
    assert reply["error"]["code"] in {"bad_message", "bad_request", "unknown_type", "unsupported_version", "too_large"}


def test_server_still_serves_after_the_fuzzing(server, driver):
    assert driver.ping() < 1.0
    assert server._thread.is_alive()


def test_other_versions_malformed_framing_and_oversized_messages(server, driver):
    data, _ = encode_request("ping", {}, 1, "x", version=2)
    assert raw_request(server.port, data)["error"]["code"] == "unsupported_version"
    bad_frames = raw_request(server.port, b"", frames=[b"", b"one", b"two"])
    assert bad_frames["error"]["code"] == "bad_message"
    big = raw_request(server.port, os.urandom(2 << 20))  # over the 1 MiB request cap: an error reply
    assert big["error"]["code"] == "too_large"
    huge = raw_request(server.port, b"\x00" * (8 << 20), timeout_ms=1000)  # over 4x the cap: libzmq drops the peer
    assert huge is None
    assert driver.ping() < 1.0  # and everyone else is still served


def test_client_with_a_secret_refuses_unsigned_replies(server):
    """A client configured with a secret trusts only signed replies: talking to a server without the secret
    (or to something else listening on that port) is a clear connection error, not data for the planner."""
    with pytest.raises(RobotConnectionError, match="no MAC"):
        RemoteDriver("127.0.0.1", server.port, secret=SECRET)


def test_ipv6_loopback():
    try:
        srv = RobotServer(sim_backend(), host="::1", port=0, watchdog_s=0).start()
    except RuntimeError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")
    try:
        with RemoteDriver("::1", srv.port) as d:
            assert d.endpoint == f"tcp://[::1]:{srv.port}" and d.ping() < 1.0
    finally:
        srv.shutdown()


class ArmLikeBackend:
    """The Backend verbs and nothing simulated (no episode JSON, no goal photo), as the franky backend."""

    name, asynchronous = "arm-like", False

    def __init__(self):
        self.sim = SimBackend(image_size=IMAGE)

    def reset(self, seed=None, episode=None, task=None):
        return self.sim.reset(seed=seed)

    def observe(self):
        return self.sim.observe()

    def current_state(self):
        return self.sim.current_state()

    def act(self, action):
        return self.sim.act(action)

    def stop(self):
        self.sim.stop()

    def describe(self):
        return {"backend": self.name}

    def close(self):
        self.sim.close()


def test_scene_verbs_are_declared_not_guessed():
    """The server asks a backend for goal photos and episode JSON only if it is a SimulatedScene: the sim
    backend is, an arm is not, and its client is told so in one line."""
    from vjepa_planning.robot_drivers.backends import SimulatedScene

    assert isinstance(SimBackend(image_size=IMAGE), SimulatedScene) and not isinstance(ArmLikeBackend(), SimulatedScene)
    with RobotServer(lambda: ArmLikeBackend(), port=0, watchdog_s=0) as srv, RemoteDriver("127.0.0.1", srv.port) as d:
        d.reset()
        with pytest.raises(RemoteRobotError, match="cannot render a goal image; take a goal picture instead") as e:
            d.goal_image()
        assert e.value.code == "unsupported"
        assert d.act(np.zeros(7)).shape == (7,)  # a synchronous arm's step is checked as before
