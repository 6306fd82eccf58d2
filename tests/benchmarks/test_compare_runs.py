"""benchmarks/compare_runs.py: identical runs pass, a changed or missing episode is named and fails."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_runs.py"


def results(path, episodes):
    path.write_text(json.dumps({"episodes": episodes}))
    return str(path)


def episode(seed, success=True, steps=5):
    return {"task": "reach", "policy": "planner", "seed": seed, "success": success, "steps": steps,
            "final_distance": 0.03, "final_energy": 0.5, "goal_images": 1}


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_identical_runs_pass_and_differences_are_named(tmp_path):
    a = results(tmp_path / "a.json", [episode(1), episode(2)])
    assert run(a, a).returncode == 0 and "2/2 episodes identical" in run(a, a).stdout
    b = results(tmp_path / "b.json", [episode(1), episode(2, success=False, steps=9)])
    out = run(a, b)
    assert out.returncode == 1 and "1/2 episodes identical" in out.stdout
    assert "('reach', 'planner', 2): success True -> False; steps 5 -> 9" in out.stdout
    c = results(tmp_path / "c.json", [episode(1)])
    assert "only in before" in run(a, c).stdout
    (tmp_path / "bad.json").write_text("not json")
    bad = run(a, str(tmp_path / "bad.json"))
    assert bad.returncode != 0 and "not a sim-benchmark results.json" in bad.stderr
