"""plan-goal, unchanged, through the remote driver against a sim-backed robot-server process on loopback."""

import json

import numpy as np
import pytest
import torch
from server_process import free_port, kill, start_server_process

from apps import plan_goal, render_goal
from worldmodel.checkpoints import save_module
from worldmodel.data.lerobot_dataset import LeRobotDataset
from worldmodel.encoder import build_encoder
from worldmodel.predictor import ACPredictor


@pytest.mark.slow
def test_plan_goal_with_the_planner_through_a_robot_server(tmp_path, capsys):
    torch.manual_seed(0)
    save_module(build_encoder("vit_micro", patch_size=16, img_size=32), tmp_path / "enc.safetensors")
    save_module(ACPredictor(embed_dim=64, predictor_embed_dim=32, depth=2, num_heads=2, grid_size=2), tmp_path / "pred.safetensors")
    goal = tmp_path / "goal.png"
    render_goal.main(["--task", "reach", "--seed", "3", "--out", str(goal), "--size", "64"])
    port = free_port()
    server = start_server_process(port)
    try:
        plan_goal.main([
            "--goal", str(goal), "--policy", "planner", "--steps", "4", "--log-dir", str(tmp_path / "log"),
            "driver=remote", f"driver.port={port}", "env.image_size=64",
            f"world_model.encoder={tmp_path / 'enc.safetensors'}", f"world_model.predictor={tmp_path / 'pred.safetensors'}",
            "planner.num_samples=8", "planner.num_elites=2", "planner.iterations=2",
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
