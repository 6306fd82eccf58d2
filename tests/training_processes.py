"""Training commands as separate processes, for the kill-and-resume and DDP tests."""

import os
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def kill_after_logged(cmd: list[str], log: Path, lines: int, timeout_s: float = 120) -> None:
    """Start ``cmd`` and SIGKILL it once its loss log has ``lines`` lines: no chance to save, so a resume
    must start from the last periodic checkpoint."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= lines:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
