"""A real robot-server process on loopback, for tests that need one (imported via conftest's path)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from robot_drivers.protocol import RobotConnectionError
from robot_drivers.remote_driver import RemoteDriver

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server_process(port: int) -> subprocess.Popen:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    env.pop("ROBOT_SERVER_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.robot_server", f"port={port}", "env.image_size=64", "watchdog_s=0"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"robot-server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            RemoteDriver("127.0.0.1", port, timeout_s=0.5, retries=0, heartbeat=False).close()
            return proc
        except RobotConnectionError:
            pass
    proc.kill()
    raise RuntimeError("robot-server did not come up within 60 s")


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


