"""Robot-server test helpers: a real server process on loopback, and hand-made raw requests."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import zmq

from vjepa_planning.robot_drivers.protocol import RobotConnectionError, decode_reply
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server_process(port: int) -> subprocess.Popen:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    env.pop("ROBOT_SERVER_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vjepa_planning.apps.robot_server", f"port={port}", "env.image_size=64", "watchdog_s=0"],
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


def raw_request(port: int, data: bytes, secret: bytes | None = None, nonce: bytes = b"", frames=None, timeout_ms: int = 3000):
    """Send one hand-made message on a fresh DEALER; the decoded reply, or None without one."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect(f"tcp://127.0.0.1:{port}")
    try:
        s.send_multipart(frames if frames is not None else [b"", data])
        if not s.poll(timeout_ms):
            return None
        return decode_reply(s.recv_multipart()[-1], secret, nonce)
    finally:
        s.close(0)
