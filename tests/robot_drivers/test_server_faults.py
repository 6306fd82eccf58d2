"""Faults between the remote driver and the robot server: time-outs, a server killed mid-episode (steps logged
so far stay on disk), reconnection to a restarted server, and a bounded loopback load test."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from vjepa_planning.robot_drivers.protocol import (
    RemoteRobotError,
    RobotConnectionError,
    decode_request_envelope,
    encode_reply,
    parse_request_body,
)
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.server import RobotServer
from server_process import free_port, kill, start_server_process

ROOT = Path(__file__).resolve().parents[2]


class FakeServer:
    """A ROUTER on loopback that answers hello/ping like a server but swallows the request types in `hang_on`."""

    def __init__(self, hang_on=("act",)):
        self.hang_on, self.received = set(hang_on), []
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            if not self.sock.poll(20):
                continue
            ident, empty, data = self.sock.recv_multipart()
            req = parse_request_body(decode_request_envelope(data)[0])
            self.received.append(req["type"])
            if req["type"] in self.hang_on:
                continue
            result = {"watchdog_s": 0.0, "backend": {"backend": "fake"}} if req["type"] == "hello" else {}
            self.sock.send_multipart([ident, empty, encode_reply(req["id"], "fake", result)])

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close(0)
        self.ctx.term()


def test_no_server_gives_a_clear_error_naming_host_and_port():
    port = free_port()
    t = time.monotonic()
    with pytest.raises(RobotConnectionError) as e:
        RemoteDriver("127.0.0.1", port, timeout_s=0.3, retries=1)
    assert time.monotonic() - t < 2.0
    msg = str(e.value)
    assert f"tcp://127.0.0.1:{port}" in msg and "no reply to 'hello' within 0.3 s (2 tries)" in msg and "robot-server running" in msg


def test_act_time_out_is_never_retried_and_says_so():
    fake = FakeServer(hang_on=("act",))
    try:
        with RemoteDriver("127.0.0.1", fake.port, timeout_s=0.3, retries=3) as d:
            with pytest.raises(RobotConnectionError, match="not retried: it may or may not have reached the arm"):
                d.act(np.zeros(7))
            assert fake.received.count("act") == 1
            t = time.monotonic()
            d.ping()  # the server answers pings again: the driver recovered on a fresh socket
            assert time.monotonic() - t < 0.3
    finally:
        fake.close()


def test_idempotent_requests_are_retried_then_fail_fast_while_unreachable():
    fake = FakeServer(hang_on=("observe", "stop"))
    try:
        with RemoteDriver("127.0.0.1", fake.port, timeout_s=0.2, retries=2, heartbeat=False) as d:
            with pytest.raises(RobotConnectionError, match=r"\(3 tries\)"):
                d.observe()
            assert fake.received.count("observe") == 3
            t = time.monotonic()
            with pytest.raises(RobotConnectionError):
                d.stop()  # e.g. the clean-up after the failure: one try, not three
            assert fake.received.count("stop") == 1 and time.monotonic() - t < 0.5
    finally:
        fake.close()


# ---- a real server process, killed and restarted ---------------------------------------------------------


@pytest.mark.slow
def test_server_killed_mid_episode_then_restarted(tmp_path):
    from vjepa_planning.control import recording as episode_log
    from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset

    port = free_port()
    proc = start_server_process(port)
    try:
        driver = RemoteDriver("127.0.0.1", port, timeout_s=1.0, retries=1)
        obs = driver.reset(seed=1)
        recorder = episode_log.EpisodeRecorder(tmp_path / "log", "exterior", obs.image.shape[:2], fps=4, privileged=True)
        recorder.start("reach", obs)
        with pytest.raises(RobotConnectionError) as e:
            for step in range(50):
                if step == 5:
                    kill(proc)  # the server dies mid-episode
                sent = driver.act([0.01, 0, 0, 0, 0, 0, 0])
                recorder.record(sent, driver.observe())
        assert f"127.0.0.1:{port}" in str(e.value) and "no reply to 'act'" in str(e.value)
        episode = recorder.finish()  # what plan-goal does in its `finally`
        recorder.close()
        ds = LeRobotDataset(tmp_path / "log")
        assert ds.episode_length(episode) == 6  # 5 steps + the last observation, intact on disk
        ep = ds.episode(episode)
        assert np.all(np.diff(ep.states[:, 0]) > 0.005)  # the +x steps, as they were taken
        np.testing.assert_allclose(ep.actions[:5, 0], 0.01)

        proc = start_server_process(port)  # the same driver object talks to the restarted server
        with pytest.raises(RobotConnectionError, match="restarted"):
            driver.observe()  # the old episode is gone: say so instead of returning another episode's state
        obs = driver.reset(seed=1)
        driver.act([0.01, 0, 0, 0, 0, 0, 0])
        assert driver.observe().state[0] > obs.state[0]
        driver.close()
    finally:
        kill(proc)


# ---- load ---------------------------------------------------------------------------------------------


def test_bounded_load_several_clients_nothing_dropped():
    """4 clients x 150 requests (observe/ping/act) on loopback: every request answered, matched by id. Client 0
    holds the arm; the others' acts are answered "busy" (one controller at a time)."""
    n_clients, n_requests = 4, 150
    with RobotServer(lambda: SimBackend(image_size=64), port=0, watchdog_s=0) as srv:
        results: list[list[float]] = [[] for _ in range(n_clients)]
        busy = [0] * n_clients
        taken, done = threading.Event(), threading.Barrier(n_clients, timeout=60)
        errors: list[BaseException] = []

        def client(i):
            try:
                with RemoteDriver("127.0.0.1", srv.port, timeout_s=10.0, heartbeat=False) as d:
                    if i == 0:
                        d.reset()
                        taken.set()
                    assert taken.wait(30)
                    for k in range(n_requests):
                        t = time.perf_counter()
                        if k % 3 == 0:
                            assert d.observe().image.shape == (64, 64, 3)
                        elif k % 3 == 1:
                            d.ping()
                        else:
                            try:
                                d.act(np.zeros(7))
                            except RemoteRobotError as e:
                                assert e.code == "busy" and i != 0, e
                                busy[i] += 1
                        results[i].append(time.perf_counter() - t)
                    done.wait()  # client 0 keeps the arm until everyone is through
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert all(len(r) == n_requests for r in results)
        lat = np.concatenate(results)
        print(f"\n{len(lat)} requests in {time.monotonic() - t0:.2f} s: p50 {1e3 * np.percentile(lat, 50):.2f} ms, p99 {1e3 * np.percentile(lat, 99):.2f} ms")
        answered = sum(srv.stats[k] for k in ("observe", "ping", "act", "act:busy"))
        assert answered == n_clients * n_requests  # nothing dropped, nothing extra
        assert busy == [0] + [n_requests // 3] * (n_clients - 1) and srv.stats["act"] == n_requests // 3
        assert srv.stats["hello"] == n_clients


def test_remote_error_is_not_a_connection_error(tmp_path):
    """A refusal by the server (e.g. act after stop) is a RemoteRobotError: the link is fine, don't reconnect."""
    with RobotServer(lambda: SimBackend(image_size=64), port=0, watchdog_s=0) as srv, RemoteDriver("127.0.0.1", srv.port) as d:
        d.reset()
        d.stop()
        with pytest.raises(RemoteRobotError) as e:
            d.act(np.zeros(7))
        assert not isinstance(e.value, ConnectionError) and e.value.code == "stopped"
