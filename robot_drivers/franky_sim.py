"""A franky-sim server on loopback: the real libfranka protocol against a MuJoCo Panda, for the franky backend's
tests and the motion benchmark (pip install franky-control==2.0.0 franky-sim==1.0.4).

    with franky_sim_server() as robot_ip:
        backend = FrankyBackend(robot_ip, camera, limits, realtime=False)
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

START_TIMEOUT_S = 60.0
LIFETIME_S = 300.0  # a stuck libfranka call must not hang its caller: after this the sim goes away and franky raises


def franky_sim_missing() -> str | None:
    """Why franky-sim cannot run here (a one-line install hint), or None if it can."""
    if importlib.util.find_spec("franky") is None:
        return "franky-control is not installed (pip install franky-control==2.0.0)"
    if importlib.util.find_spec("franky_sim") is None or shutil.which("franky-sim") is None:
        return "franky-sim is not installed (pip install franky-sim==1.0.4)"
    return None


@contextmanager
def franky_sim_server(lifetime_s: float = LIFETIME_S) -> Iterator[str]:
    """Start `franky-sim -s mujoco`, yield the loopback address it serves on, stop it on exit (or after
    `lifetime_s`). Raises RuntimeError if it is missing or does not start within a minute."""
    why = franky_sim_missing()
    if why:
        raise RuntimeError(why)
    env = dict(os.environ, PYTHONUNBUFFERED="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    proc = subprocess.Popen(["franky-sim", "-s", "mujoco"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    lines: list[str] = []
    found = threading.Event()
    address: list[str] = []

    def read_output() -> None:
        for line in proc.stdout:
            lines.append(line)
            if not found.is_set() and (m := re.search(r"using '([0-9.]+)'", line)):
                address.append(m.group(1))
                found.set()

    threading.Thread(target=read_output, daemon=True).start()
    timer = threading.Timer(lifetime_s, proc.kill)
    timer.daemon = True
    timer.start()
    try:
        if not found.wait(START_TIMEOUT_S):
            raise RuntimeError(f"franky-sim did not start within {START_TIMEOUT_S:g} s: {''.join(lines)[-2000:]}")
        if not address[0].startswith("127."):
            raise RuntimeError(f"franky-sim serves on {address[0]}, not loopback")
        yield address[0]
    finally:
        timer.cancel()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
