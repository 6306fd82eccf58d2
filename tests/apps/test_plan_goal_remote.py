"""plan-goal, unchanged, through the remote driver against a sim-backed robot-server process on loopback."""

import json

import numpy as np
import pytest
from server_process import free_port, kill, start_server_process

from vjepa_planning.apps import plan_goal, render_goal
from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset


@pytest.mark.slow
def test_plan_goal_with_the_planner_through_a_robot_server(tmp_path, capsys, tiny_world_model_files):
    goal = tmp_path / "goal.png"
    render_goal.main(["--task", "reach", "--seed", "3", "--out", str(goal), "--size", "64"])
    port = free_port()
    server = start_server_process(port)
    try:
        plan_goal.main([
            "--goal", str(goal), "--policy", "planner", "--steps", "4", "--log-dir", str(tmp_path / "log"),
            "driver=remote", f"driver.port={port}", "env.image_size=64", *tiny_world_model_files,
        ])
    finally:
        kill(server)
    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if line.startswith("step ")]
    assert len(steps) == 4 and all("energy" in line for line in steps)
    # The server is a sim: its privileged distance comes back over the wire, and goal.json set its start.
    assert all("distance" in line for line in steps)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["steps"] == 4
    ep = LeRobotDataset(tmp_path / "log").episode(0)
    assert ep.length == 5
    spec = json.loads((tmp_path / "goal.json").read_text())
    np.testing.assert_allclose(ep.states[0, :3], spec["start_ee"], atol=0.01)
    # Every logged action is what the server let through: within the planner's and the safety bounds.
    assert np.all(np.abs(ep.actions[:, :3]) <= 0.05 + 1e-6)
