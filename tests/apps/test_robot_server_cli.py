"""The robot-server command: config composition, secrets, the off-loopback refusal, goal snapshots, the sim
backend's configured camera."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from vjepa_planning.apps.robot_server import build_server, main, make_backend_factory
from vjepa_planning.configs import CONFIG_DIR, compose_config
from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
from vjepa_planning.robot_drivers.server import RobotServer


def test_config_composes_with_safe_defaults():
    cfg = compose_config("robot_server")
    assert cfg.host == "127.0.0.1" and cfg.backend == "sim" and cfg.watchdog_s > 0
    assert cfg.auth.secret_file is None and cfg.safety.max_translation == 0.075


def test_remote_driver_config_keys():
    cfg = OmegaConf.load(CONFIG_DIR / "driver" / "remote.yaml")
    assert cfg.type == "remote" and {"host", "port", "timeout_s", "secret_file", "secret_env", "heartbeat"} <= set(cfg)


def test_plan_goal_composes_with_the_remote_driver_and_make_driver_accepts_it(monkeypatch):
    from vjepa_planning.robot_drivers.factory import make_driver

    monkeypatch.delenv("ROBOT_SERVER_SECRET", raising=False)
    with RobotServer(lambda: SimBackend(image_size=64), port=0, watchdog_s=0) as srv:
        cfg = compose_config("plan_goal", ["driver=remote", "driver.host=127.0.0.1", f"driver.port={srv.port}", "env.image_size=64"])
        with make_driver(cfg.driver, cfg.env) as driver:
            assert driver.reset().image.shape == (64, 64, 3)


def test_binding_off_loopback_without_curve_keys_exits_with_an_error(monkeypatch, caplog):
    monkeypatch.delenv("ROBOT_SERVER_SECRET", raising=False)
    assert main(["--host", "0.0.0.0"]) == 2
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage().startswith("refusing to bind the robot server to '0.0.0.0' without CURVE keys")


def test_new_secret_file_then_secure_config(tmp_path, monkeypatch):
    path = tmp_path / "robot.secret"
    assert main(["--new-secret-file", str(path)]) == 0
    assert path.stat().st_mode & 0o777 == 0o600
    monkeypatch.delenv("ROBOT_SERVER_SECRET", raising=False)
    server = build_server(compose_config("robot_server", [f"auth.secret_file={path}", "port=0"]))
    assert server.secret == path.read_text().strip().encode()


def test_snapshot_saves_the_servers_camera_frame(tmp_path, monkeypatch):
    monkeypatch.delenv("ROBOT_SERVER_SECRET", raising=False)
    with RobotServer(lambda: SimBackend(image_size=64), port=0, watchdog_s=0) as srv:
        out = tmp_path / "goal.png"
        assert main(["--snapshot", str(out), "--port", str(srv.port)]) == 0
        img = np.asarray(Image.open(out))
        assert img.shape == (64, 64, 3)
        np.testing.assert_array_equal(img, srv.backend.observe().image)


def test_sim_server_renders_the_configured_camera():
    from vjepa_planning.robot_drivers.sim_driver import SimDriver

    cfg = compose_config("robot_server", ["env.camera=workspace", "env.image_size=64"])
    with RobotServer(make_backend_factory(cfg), port=0, watchdog_s=0) as srv, RemoteDriver("127.0.0.1", srv.port) as d:
        assert d.server_info["backend"]["camera"] == "workspace (rendered)"
        remote = d.reset(seed=5).image
    views = {}
    for camera in ("workspace", "exterior"):
        local = SimDriver(image_size=64, seed=5, camera=camera)
        views[camera] = local.reset().image
        local.close()
    np.testing.assert_array_equal(remote, views["workspace"])
    assert np.abs(remote.astype(int) - views["exterior"].astype(int)).mean() > 10


def test_cfg_prints_and_exits(capsys):
    with pytest.raises(SystemExit):
        main(["--cfg"])
    assert "watchdog_s" in capsys.readouterr().out
