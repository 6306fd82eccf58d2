"""robot-server: serve the MuJoCo sim or a real Franka to planners elsewhere on the network.

    robot-server                                        # sim backend, 127.0.0.1:5555, no auth needed
    robot-server --new-keys ~/.config/vjepa/curve      # CURVE key pairs: server + one client
    robot-server --backend franky --host 0.0.0.0 curve.server_secret_key=~/.config/vjepa/curve/server.key_secret \
        curve.authorized_clients=~/.config/vjepa/curve/authorized_clients franky.robot_ip=172.16.0.2
    robot-server --snapshot goal.png --host 10.0.0.2 curve.server_public_key=... curve.client_secret_key=...
    robot-server --new-secret-file ~/.config/vjepa/robot.secret   # optional HMAC on top (--secret-file)

See docs/real_franka.md for the network layout and the safety settings.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from omegaconf import DictConfig

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.curve import load_server_keys, new_keys
from vjepa_planning.robot_drivers.factory import client_curve_keys, safety_limits
from vjepa_planning.robot_drivers.protocol import load_secret, write_secret_file
from vjepa_planning.robot_drivers.safety import MotionTolerance
from vjepa_planning.robot_drivers.server import RobotServer

log = logging.getLogger("robot-server")

FLAGS = {
    "--backend": ("backend", "sim or franky"),
    "--host": ("host", "address to bind (or, with --snapshot, the server to ask)"),
    "--port": ("port", "TCP port"),
    "--secret-file": ("auth.secret_file", "file holding the shared secret"),
    "--snapshot": ("snapshot", "save one camera frame from the running server to this PNG and exit"),
    "--new-secret-file": ("new_secret_file", "write a fresh random shared secret to this file and exit"),
    "--new-keys": ("new_keys", "write CURVE key pairs (server and one client) to this directory and exit"),
}


def make_backend_factory(cfg: DictConfig):
    limits = safety_limits(cfg.safety)
    if cfg.backend == "sim":
        env = cfg.env
        return lambda: SimBackend(task=env.task, image_size=int(env.image_size), seed=int(env.seed), limits=limits,
                                  max_steps=env.max_steps, camera=str(env.camera))
    if cfg.backend == "franky":

        def factory():
            from vjepa_planning.robot_drivers.camera import make_camera
            from vjepa_planning.robot_drivers.franky_backend import make_franky_backend

            camera = make_camera(cfg.camera, int(cfg.env.image_size))
            try:
                return make_franky_backend(cfg.franky, camera, limits)
            except BaseException:
                camera.close()
                raise

        return factory
    raise ValueError(f"unknown backend {cfg.backend!r}; choose sim or franky")


def server_curve_keys(cfg: DictConfig):
    key, clients = cfg.curve.server_secret_key, cfg.curve.authorized_clients
    if key is None and clients is None:
        return None
    if key is None or clients is None:
        raise ValueError("CURVE needs both curve.server_secret_key and curve.authorized_clients")
    return load_server_keys(key, clients)


def build_server(cfg: DictConfig) -> RobotServer:
    secret = load_secret(cfg.auth.secret_file, cfg.auth.secret_env)
    return RobotServer(
        make_backend_factory(cfg),
        host=str(cfg.host),
        port=int(cfg.port),
        secret=secret,
        limits=safety_limits(cfg.safety),
        watchdog_s=float(cfg.watchdog_s),
        max_request_bytes=int(cfg.max_request_bytes),
        max_reply_bytes=int(cfg.max_reply_bytes),
        max_clock_skew_s=float(cfg.auth.max_clock_skew_s),
        curve=server_curve_keys(cfg),
        motion_tolerance=MotionTolerance(**{k: float(v) for k, v in cfg.safety.motion_tolerance.items()}),
    )


def snapshot(cfg: DictConfig) -> Path:
    from PIL import Image

    from vjepa_planning.robot_drivers.remote_driver import RemoteDriver

    with RemoteDriver(str(cfg.host), int(cfg.port), secret_file=cfg.auth.secret_file, secret_env=cfg.auth.secret_env, heartbeat=False,
                      client_name="snapshot", curve=client_curve_keys(cfg.curve)) as driver:
        image = driver.observe().image
    out = Path(cfg.snapshot)
    Image.fromarray(image).save(out)
    return out


@command("robot-server")
def main(argv: list[str] | None = None) -> int:
    cfg = parse("robot_server", "Serve a robot (sim or a real Franka) to remote planners.", FLAGS, argv)
    if cfg.new_secret_file:
        path = write_secret_file(cfg.new_secret_file)
        print(f"wrote a new shared secret to {path} (mode 600); copy it to the workstation over a secure channel")
        return 0
    if cfg.new_keys:
        try:
            d = new_keys(cfg.new_keys)
        except ValueError as e:
            log.error("%s", e)
            return 2
        print(f"wrote CURVE keys to {d}: server.key_secret stays on the robot computer (curve.server_secret_key, with "
              f"curve.authorized_clients={d / 'authorized_clients'}); copy server.key and client.key_secret to the workstation "
              "(driver.curve.server_public_key, driver.curve.client_secret_key) over a secure channel")
        return 0
    if cfg.snapshot:
        print(f"saved {snapshot(cfg)}")
        return 0
    try:
        server = build_server(cfg)
    except ValueError as e:
        log.error("%s", e)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown(timeout_s=0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
