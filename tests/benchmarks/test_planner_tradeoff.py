"""benchmarks/planner_tradeoff.py: presets timed on a real context, kept runs reused, table and plot written."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, _DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


planning_speed = _load("planning_speed")  # the sibling the trade-off script imports
tradeoff = _load("planner_tradeoff")


def test_presets_are_timed_with_their_own_work(one_torch_thread):
    timing = tradeoff.time_presets(["cem", "icem", "cem8=cem,planner.num_samples=8"], repeats=1, overrides=["planner.num_samples=16", "planner.num_elites=4"])
    assert set(timing) == {"cem", "icem", "cem8"} and timing["cem8"]["candidates"] == 8 * timing["cem8"]["iterations"]
    assert timing["cem"]["candidates"] == 16 * timing["cem"]["iterations"]
    assert timing["icem"]["candidates"] < timing["cem"]["candidates"]  # shrinking sample count
    assert all(t["seconds_per_action"] > 0 for t in timing.values())


def test_kept_runs_are_reused_only_for_the_same_seeds_and_tasks(tmp_path, monkeypatch):
    run = tmp_path / "cem"
    run.mkdir()
    from omegaconf import OmegaConf

    from vjepa_planning.configs import compose_config

    planner = OmegaConf.to_container(compose_config("sim_benchmark", ["planner=cem"]).planner)
    kept = {"config": {"seed_list": [5, 6], "tasks": ["reach"], "planner": planner},
            "summary": [{"task": "reach", "policy": "planner", "successes": 1, "episodes": 2}]}  # fmt: skip
    (run / "results.json").write_text(json.dumps(kept))
    calls = []

    def fake_run(cmd, check):  # stands in for sim-benchmark: records the command, writes a results file
        calls.append(cmd)
        out = Path(next(c for c in cmd if c.startswith("out=")).removeprefix("out="))
        out.mkdir(exist_ok=True)
        (out / "results.json").write_text(json.dumps(kept))

    monkeypatch.setattr(tradeoff.subprocess, "run", fake_run)
    assert tradeoff.run_success("cem", ["reach"], [5, 6], tmp_path, 1, [])["summary"] == kept["summary"]
    assert calls == []
    tradeoff.run_success("cem64=cem,planner.num_samples=64", ["reach"], [5, 6], tmp_path, 1, [])  # other settings: run
    assert calls[-1][-1] == "planner.num_samples=64" and calls[-1][-2] == f"out={tmp_path / 'cem64'}"
    calls.clear()
    tradeoff.run_success("cem", ["reach"], [5, 7], tmp_path, 1, ["env.camera=workspace"])  # other seeds: re-run
    assert len(calls) == 1 and "seed_list=[5,7]" in calls[0] and "planner=cem" in calls[0] and calls[0][-1] == "env.camera=workspace"


def test_table_and_plot(tmp_path):
    rows = [
        {"planner": "cem", "seconds_per_action": 0.6, "candidates": 640, "success": {"reach": (9, 10), "grasp": (3, 10)}, "mean_success": 0.6},
        {"planner": "icem", "seconds_per_action": 0.4, "candidates": 432, "success": {"reach": (10, 10), "grasp": (2, 10)}, "mean_success": 0.6},
    ]
    text = tradeoff.table(rows, ["reach", "grasp"], [2000, 2009])
    assert "| icem | 0.400 | 432 | 10/10 | 2/10 | 60% |" in text
    tradeoff.plot(rows, ["reach", "grasp"], tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 5000


def test_planning_speed_names_an_emulated_matmul_and_measures_a_preset(one_torch_thread, capsys):
    import argparse

    import torch

    from vjepa_planning.configs import compose_config

    peaks = {torch.float32: 100.0, torch.bfloat16: 0.3}
    assert "EMULATED" in planning_speed.peak_note("cpu", torch.bfloat16, peaks)
    assert "EMULATED" not in planning_speed.peak_note("cpu", torch.bfloat16, {torch.float32: 100.0, torch.bfloat16: 400.0})
    args = argparse.Namespace(official_size=False, random_init=True, synthetic_context=False, repeats=1, profile=3)
    cfg = compose_config("plan_goal", ["planner=icem", "planner.num_samples=16", "planner.num_elites=4", "planner.iterations=2"])
    row = planning_speed.measure(args, cfg, "float32", "false", {torch.float32: 100.0})
    assert row["dtype"] == "float32" and row["rollout"] == "eager" and row["cached_s"] > 0 and row["gflop"] > 0
    out = capsys.readouterr().out
    assert "eager rollout (set explicitly)" in out and "icem, context 4 frames" in out and "candidates" in out
    assert "Self CPU" in out  # --profile: the profiler table of one plan


def test_the_synthetic_context_has_the_sim_contexts_shapes(tiny_wm):
    """--synthetic-context (a GPU box without MuJoCo) stands in for the sim episode shape for shape."""
    from vjepa_planning.control.build import planning_context

    real = planning_context(tiny_wm, 3, "cpu")
    fake = planning_speed.synthetic_context(tiny_wm, 3, "cpu")
    assert [t.shape for t in fake] == [t.shape for t in real]
    assert [t.dtype for t in fake] == [t.dtype for t in real]


def test_an_override_after_compile_values_is_refused_not_measured(monkeypatch, capsys):
    """--compile takes 1+ values: a Hydra override after them is an invalid choice, not a silent setting."""
    import pytest

    monkeypatch.setattr(sys, "argv", ["planning_speed.py", "--compile", "true", "planner=cem"])
    with pytest.raises(SystemExit):
        planning_speed.main()
    assert "invalid choice: 'planner=cem'" in capsys.readouterr().err
