"""CURVE on the robot server, on loopback: encrypted bytes on the wire (seen through a recording TCP relay)
and only authorized client keys get through. Keys made by the robot-server command, and CURVE required off
loopback, are tested in tests/apps/test_robot_server_curve.py."""

from __future__ import annotations

import select
import socket
import threading

import numpy as np
import pytest

from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.curve import load_client_keys, load_server_keys, new_keys
from vjepa_planning.robot_drivers.protocol import PROTOCOL_NAME, RobotConnectionError
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
from vjepa_planning.robot_drivers.server import RobotServer

ACTION = np.array([0.0123, -0.0234, 0.0111, 0, 0, 0, 0.25])


def sim():
    return SimBackend(task="reach", image_size=32)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return new_keys(tmp_path_factory.mktemp("curve"))


@pytest.fixture(scope="module")
def server(keys):
    with RobotServer(sim, port=0, watchdog_s=0, curve=load_server_keys(keys / "server.key_secret", keys / "authorized_clients")) as srv:
        yield srv


def client_keys(keys):
    return load_client_keys(keys / "server.key", keys / "client.key_secret")


class Relay:
    """A TCP relay from a local port to the server that records every byte it passes on."""

    def __init__(self, target_port: int):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port, self.target, self.seen = self.listener.getsockname()[1], target_port, bytearray()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        a, _ = self.listener.accept()
        b = socket.create_connection(("127.0.0.1", self.target))
        peers = {a: b, b: a}
        while True:
            for s in select.select(list(peers), [], [], 5)[0]:
                data = s.recv(65536)
                if not data:
                    return
                self.seen += data
                peers[s].sendall(data)


@pytest.mark.parametrize("curve", [True, False])
def test_the_wire_carries_nothing_readable_with_curve(keys, server, curve):
    target = server
    if not curve:
        target = RobotServer(sim, port=0, watchdog_s=0).start()
    relay = Relay(target.port)
    try:
        with RemoteDriver("127.0.0.1", relay.port, curve=client_keys(keys) if curve else None, heartbeat=False) as d:
            assert d.server_info["encrypted"] is curve
            d.reset(seed=2)
            sent = d.act(ACTION)
            image = d.observe().image
    finally:
        if not curve:
            target.shutdown()
    wire = bytes(relay.seen)
    readable = [PROTOCOL_NAME.encode(), sent.astype("<f8").tobytes(), image.tobytes()[:64], b"observe"]
    assert all((x in wire) is not curve for x in readable)


def test_only_authorized_client_keys_get_through(keys, server, tmp_path):
    other = new_keys(tmp_path / "other")  # a well-formed key pair the server does not know
    before = server.stats["messages"]
    with pytest.raises(RobotConnectionError, match="CURVE handshake"):
        RemoteDriver("127.0.0.1", server.port, curve=load_client_keys(keys / "server.key", other / "client.key_secret"), timeout_s=1.0, retries=0)
    with pytest.raises(RobotConnectionError, match="no reply"):
        RemoteDriver("127.0.0.1", server.port, timeout_s=1.0, retries=0)  # no CURVE at all
    assert server.stats["messages"] == before  # nothing reached the request loop
