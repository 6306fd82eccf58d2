"""benchmarks/goal_energy_profile.py: a real oracle reach episode closes on its goal, and the printed profile
covers the distance bands the episode passed through for each world model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "goal_energy_profile.py"
_spec = importlib.util.spec_from_file_location("goal_energy_profile", _PATH)
gep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gep)


def test_oracle_episode_reaches_its_goal():
    frames, dists, goal = gep.episode(3000, 32, "workspace", steps=8)
    assert frames.shape == (9, 32, 32, 3) and goal.shape == (32, 32, 3)
    assert dists[0] > 0.05 and dists[-1] < 0.01 and np.all(np.diff(dists) <= 1e-3)


def test_profile_prints_one_row_per_world_model(tiny_world_model_files, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["goal_energy_profile.py", "env.image_size=32", *tiny_world_model_files,
                                      "--seeds", "1", "--world-models", "sim"])
    gep.main()
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| sim |")]
    assert len(rows) == 1
    near = float(rows[0].split("|")[2].split()[0])  # the 0-1 cm band: frames at the goal, nearly the goal image
    assert near < 0.1
