"""CURVE through the robot-server command: the keys --new-keys makes are private and never overwritten, and
off loopback the command requires CURVE, which the robot_server and plan_goal configs wire end to end."""

from __future__ import annotations

import pytest

from vjepa_planning.apps.robot_server import build_server, main
from vjepa_planning.configs import compose_config
from vjepa_planning.robot_drivers.curve import load_client_keys
from vjepa_planning.robot_drivers.factory import make_driver


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("curve")
    assert main(["--new-keys", str(d)]) == 0
    return d


def test_new_keys_are_private_and_never_overwritten(keys):
    for name in ("server.key_secret", "client.key_secret"):
        assert (keys / name).stat().st_mode & 0o777 == 0o600
    assert (keys / "authorized_clients" / "client.key").read_bytes() == (keys / "client.key").read_bytes()
    assert main(["--new-keys", str(keys)]) == 2  # refuses to overwrite
    with pytest.raises(ValueError, match="no secret key"):
        load_client_keys(keys / "server.key", keys / "client.key")  # the public file given for the secret one


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
