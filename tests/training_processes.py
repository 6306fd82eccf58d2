"""Training commands as separate processes, for the kill-and-resume and DDP tests."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import torch

from vjepa_planning.worldmodel import checkpoints

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


def check_sigkill_then_resume(command, tmp: Path, *, steps: int, first_checkpoint: int, slow_down: str, kill_at: int) -> None:
    """`command(run_dir, out)` run once uninterrupted, then once more with `slow_down` added, SIGKILLed after
    `kill_at` logged steps and resumed: the weights must equal the uninterrupted run's bit for bit, and the
    loss log must list every step once."""
    run(command(tmp / "ra", tmp / "a.safetensors"))
    cmd = command(tmp / "rb", tmp / "b.safetensors")
    log = tmp / "rb" / "log.jsonl"
    kill_after_logged(cmd + [slow_down], log, kill_at)
    state = torch.load(tmp / "rb" / "state.pt", weights_only=False)
    assert first_checkpoint <= state["step"] < steps and not (tmp / "b.safetensors").exists()
    run(cmd)
    a, _ = checkpoints.read_safetensors(tmp / "a.safetensors")
    b, _ = checkpoints.read_safetensors(tmp / "b.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == list(range(1, steps + 1))
