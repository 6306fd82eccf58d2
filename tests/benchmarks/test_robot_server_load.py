"""benchmarks/robot_server_load.py on small settings: every request answered, the watchdog on time under load."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_load_benchmark_passes_and_prints_the_watchdog_latency(capsys):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "robot_server_load.py"
    spec = importlib.util.spec_from_file_location("robot_server_load", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rc = bench.main(["--clients", "2", "--requests", "20", "--image-size", "32", "--watchdog", "0.3", "--trials", "2", "--auth"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "sent 40, answered 40, dropped 0" in out
    assert "watchdog under load (2 clients" in out and out.count("s after the controller") == 1
