"""Who may move the arm: one controller session at a time (busy, takeover, release, the lease ending with the
watchdog), and requests signed for one server process refused by the next one (no replay across restarts)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vjepa_planning.robot_drivers.protocol import RemoteRobotError, RobotConnectionError, encode_request
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.server import RobotServer
from server_process import free_port, raw_request

SECRET = b"lease-test-secret-0123456789abcd"
STEP = [0.02, 0, 0, 0, 0, 0, 0]


def sim():
    return SimBackend(task="reach", image_size=64)


@pytest.fixture(scope="module")
def server():
    with RobotServer(sim, port=0, watchdog_s=0) as srv:
        yield srv


def code(fn, *args, **kw) -> str:
    with pytest.raises(RemoteRobotError) as e:
        fn(*args, **kw)
    return e.value.code


def test_a_second_session_is_refused_until_it_takes_over(server):
    with RemoteDriver("127.0.0.1", server.port) as a, RemoteDriver("127.0.0.1", server.port) as b:
        a.reset(seed=3)
        a.act(STEP)
        before = b.observe().state  # observers stay open
        assert b.ping() < 1.0 and b.goal_image().ndim == 3
        assert code(b.act, STEP) == "busy"
        assert code(b.reset, seed=5) == "busy"
        assert code(b.stop) == "busy"
        np.testing.assert_array_equal(b.observe().state, before)  # none of them reached the arm
        with pytest.raises(RemoteRobotError, match="takeover"):
            b.act(STEP)  # the refusal says how to take the arm

        b.reset(seed=5, takeover=True)
        b.act(STEP)
        with pytest.raises(RemoteRobotError) as e:
            a.act(STEP)  # the previous controller is told, once
        assert e.value.code == "taken_over" and b._sid[:8] in e.value.message
        assert code(a.act, STEP) == "busy"
        a.reset(takeover=True)  # and may take it back
        a.act(STEP)
        assert code(b.act, STEP) == "taken_over"


def test_close_releases_the_arm(server):
    with RemoteDriver("127.0.0.1", server.port) as a:
        a.reset()
    with RemoteDriver("127.0.0.1", server.port) as b:
        b.reset()  # no takeover needed
        assert b.release() and not b.release()
        assert code(b.act, STEP) == "not_ready"  # a released arm must be taken with reset first


def test_the_lease_ends_with_the_watchdog():
    with RobotServer(sim, port=0, watchdog_s=0.3) as srv:
        with RemoteDriver("127.0.0.1", srv.port, heartbeat=False) as a, RemoteDriver("127.0.0.1", srv.port, heartbeat=False) as b:
            a.reset()
            assert code(b.reset) == "busy"
            time.sleep(0.6)  # a goes silent
            b.reset()  # its lease is over
            b.act(STEP)
            assert code(a.act, STEP) == "busy"


def test_heartbeats_keep_a_planning_controllers_lease():
    with RobotServer(sim, port=0, watchdog_s=0.4) as srv:
        with RemoteDriver("127.0.0.1", srv.port) as a, RemoteDriver("127.0.0.1", srv.port, heartbeat=False) as b:
            a.reset()
            time.sleep(1.0)
            assert code(b.reset) == "busy"


def test_signed_requests_are_refused_by_a_restarted_server():
    port = free_port()
    srv = RobotServer(sim, port=port, watchdog_s=0, secret=SECRET).start()
    driver = RemoteDriver("127.0.0.1", port, secret=SECRET, retries=3, timeout_s=2.0)
    try:
        driver.reset(seed=4)
        # Captured on the wire while the first server process ran (and executed there):
        captured = [encode_request(t, a, 90 + i, driver._sid, SECRET, server_id=srv.server_id)
                    for i, (t, a) in enumerate([("reset", {"seed": 7}), ("act", {"action": np.array(STEP)})])]
        for data, nonce in captured:
            assert raw_request(port, data, SECRET, nonce)["ok"]
        srv.shutdown()

        srv = RobotServer(sim, port=port, watchdog_s=0, secret=SECRET).start()  # a fresh nonce memory
        with RemoteDriver("127.0.0.1", port, secret=SECRET) as observer:
            before = observer.observe().state
            for data, nonce in captured:
                reply = raw_request(port, data, SECRET, nonce)  # replayed 'reset' and 'act'
                assert not reply["ok"] and reply["error"]["code"] == "stale_server"
            np.testing.assert_array_equal(observer.observe().state, before)
        assert srv.stats["reset"] == 0 and srv.stats["act"] == 0 and srv.stats["stale_server"] == 2

        # The client that talked to the old process: its episode is gone, and a reset re-binds it.
        with pytest.raises(RobotConnectionError, match="restarted"):
            driver.act(STEP)
        driver.reset(seed=4)
        driver.act(STEP)
        assert srv.stats["act"] == 1
    finally:
        driver.close()
        srv.shutdown()
