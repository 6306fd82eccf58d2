"""CURVE on the robot server, on loopback: keys made by the CLI, encrypted bytes on the wire (seen through a
recording TCP relay), only authorized client keys get through, and off loopback it is required."""

from __future__ import annotations

import select
import socket
import threading

import numpy as np
import pytest

from vjepa_planning.configs import compose_config
from vjepa_planning.apps.robot_server import build_server, main
from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.curve import load_client_keys, load_server_keys, new_keys
from vjepa_planning.robot_drivers.factory import make_driver
from vjepa_planning.robot_drivers.protocol import PROTOCOL_NAME, RobotConnectionError
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
from vjepa_planning.robot_drivers.server import RobotServer

ACTION = np.array([0.0123, -0.0234, 0.0111, 0, 0, 0, 0.25])


def sim():
    return SimBackend(task="reach", image_size=32)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("curve")
    assert main(["--new-keys", str(d)]) == 0
    return d


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


def test_new_keys_are_private_and_never_overwritten(keys):
    for name in ("server.key_secret", "client.key_secret"):
        assert (keys / name).stat().st_mode & 0o777 == 0o600
    assert (keys / "authorized_clients" / "client.key").read_bytes() == (keys / "client.key").read_bytes()
    assert main(["--new-keys", str(keys)]) == 2  # refuses to overwrite
    with pytest.raises(ValueError, match="no secret key"):
        load_client_keys(keys / "server.key", keys / "client.key")  # the public file given for the secret one


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


def test_off_loopback_needs_curve_and_the_configs_wire_it(keys, monkeypatch):
    monkeypatch.delenv("ROBOT_SERVER_SECRET", raising=False)
    assert main(["--host", "0.0.0.0"]) == 2
    curve = [f"curve.server_secret_key={keys / 'server.key_secret'}", f"curve.authorized_clients={keys / 'authorized_clients'}"]
    srv = build_server(compose_config("robot_server", ["host=0.0.0.0", "port=0", *curve]))
    assert srv.curve is not None and srv.secret is None  # accepted off loopback (not started here)
    with build_server(compose_config("robot_server", ["port=0", "env.image_size=32", *curve])).start() as srv:
        cfg = compose_config("plan_goal", ["driver=remote", f"driver.port={srv.port}", "env.image_size=32",
                                           f"driver.curve.server_public_key={keys / 'server.key'}",
                                           f"driver.curve.client_secret_key={keys / 'client.key_secret'}"])
        with make_driver(cfg.driver, cfg.env) as driver:
            assert driver.server_info["encrypted"] and driver.reset().image.shape == (32, 32, 3)
    with pytest.raises(ValueError, match="both"):
        build_server(compose_config("robot_server", ["port=0", curve[0]]))
