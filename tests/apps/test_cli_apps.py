"""The commands end to end on the real sim, at small sizes."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from vjepa_planning.apps import collect_trajectories, plan_goal, render_goal
from vjepa_planning.configs import compose_config
from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset


def user_error(capsys, main, argv) -> str:
    """Run a command that must refuse its input: exit code 2 and one line on stderr, no traceback."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err

def test_flags_and_hydra_overrides_compose(capsys):
    cfg = compose_config("plan_goal", ["driver.safety.max_translation=0.05", "env.task=grasp"])
    assert cfg.driver.safety.max_translation == 0.05 and cfg.env.task == "grasp"
    with pytest.raises(SystemExit):
        plan_goal.main(["--goal", "x.png", "--cfg", "env.image_size=64"])
    printed = capsys.readouterr().out
    assert "goal: x.png" in printed and "image_size: 64" in printed


def test_a_benchmark_world_model_entry_picks_a_config_and_optionally_a_file():
    from vjepa_planning.control.build import world_model_overrides

    plain = compose_config("plan_goal", world_model_overrides("lewm")).world_model
    assert plain.source == "lewm" and plain.path == "shipped:lewm_sim_workspace.safetensors"
    other = compose_config("plan_goal", world_model_overrides("lewm:runs/x.safetensors")).world_model
    assert other.source == "lewm" and other.path == "runs/x.safetensors"


def test_a_stray_positional_argument_is_refused(capsys):
    with pytest.raises(SystemExit):
        plan_goal.main(["goal.png"])
    assert "neither a --flag nor a KEY=VALUE" in capsys.readouterr().err


def test_render_goal_then_plan_goal_reaches_it(tmp_path, capsys):
    goal = tmp_path / "goal.png"
    render_goal.main(["--task", "reach", "--seed", "4", "--out", str(goal), "--size", "64"])
    spec = json.loads((tmp_path / "goal.json").read_text())
    assert spec["task"] == "reach" and spec["seed"] == 4
    assert Image.open(goal).size == (64, 64)
    plan_goal.main(["--goal", str(goal), "--policy", "oracle", "--log-dir", str(tmp_path / "log"), "env.image_size=64"])
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["success"] is True and result["final_distance"] < 0.04
    assert "distance" in out and "step   1" in out
    ds = LeRobotDataset(tmp_path / "log")
    assert ds.num_episodes == 1 and ds.episode(0).length == result["steps"] + 1


def test_collect_trajectories_writes_a_readable_dataset(tmp_path, capsys):
    out = tmp_path / "data"
    collect_trajectories.main(
        ["--out", str(out), "--episodes", "4", "--workers", "2", "--size", "32", "--camera", "workspace", "random_fraction=0.5",
         "contact_fraction=1.0"]
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 4
    policies = {key.split("/")[1] for key in summary["by_task_policy"]}
    assert policies <= {"random", "oracle+contact"}  # every oracle episode got the contact perturbation
    ds = LeRobotDataset(out)
    assert ds.num_episodes == 4
    lengths = [ds.episode(i).length for i in range(4)]
    assert sum(lengths) == ds.num_frames
    ep = ds.episode(0)
    # Logged actions are the ones that moved the robot: state[t+1] ~ state[t] + action[t] (controller error only).
    np.testing.assert_allclose(ep.states[1:, :3], ep.states[:-1, :3] + ep.actions[:-1, :3], atol=0.01)
    assert np.all(ep.actions[-1] == 0)
    assert sorted(ds.cameras) == ["workspace"]  # the sim camera's name
    assert ds.episode_frames(0, "workspace").shape == (ep.length, 32, 32, 3)


@pytest.mark.slow
def test_killing_collection_mid_run_keeps_every_earlier_episode(tmp_path):
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "vjepa_planning.apps.collect_trajectories", "--out", str(out), "--episodes", "200", "--workers", "1", "--size", "32"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            info = out / "meta" / "info.json"
            if info.exists() and json.loads(info.read_text())["total_episodes"] >= 3:
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # the workers too, wherever they are in an episode
    finally:
        proc.wait(timeout=30)
    ds = LeRobotDataset(out)
    assert ds.num_episodes >= 3
    for i in ds.episode_indices:
        ep = ds.episode(i)
        assert ds.episode_frames(i, "workspace").shape[0] == ep.length  # the default camera


def test_rerun_recording_holds_the_episode(tmp_path):
    import rerun.chunk as rrc

    goal = tmp_path / "goal.png"
    render_goal.main(["--task", "reach", "--seed", "1", "--out", str(goal), "--size", "32"])
    rrd = tmp_path / "run.rrd"
    plan_goal.main(["--goal", str(goal), "--policy", "oracle", "--log-dir", str(tmp_path / "log"), "--rerun", str(rrd), "env.image_size=32"])
    chunks = list(rrc.RrdReader(str(rrd)).stream())
    entities = {str(c.entity_path) for c in chunks}
    camera = "/observation.images.workspace"  # LeRobot's dataset-viewer layout: the dataset's own names
    assert {camera, "/state", "/action", "/goal/image", "/world/ee_path", "/metrics/distance_to_goal"} <= entities
    steps = LeRobotDataset(tmp_path / "log").episode(0).length
    camera_rows = sum(c.num_rows for c in chunks if str(c.entity_path) == camera)
    assert camera_rows == steps  # one frame per observation, the start included
    timelines = set().union(*(c.timeline_names for c in chunks if str(c.entity_path) == camera))
    assert {"frame_index", "timestamp"} <= timelines
    # each action sits at the frame it was taken from, as in the dataset's rows
    logged = {}
    for c in chunks:
        if str(c.entity_path) == "/action" and not c.is_static:
            b = c.to_record_batch().to_pydict()
            logged.update(zip(b["frame_index"], b["Scalars:scalars"]))
    actions = LeRobotDataset(tmp_path / "log").episode(0).actions
    assert sorted(logged) == list(range(steps - 1))
    np.testing.assert_allclose([logged[k] for k in range(steps - 1)], actions[: steps - 1], atol=1e-6)


def test_plan_goal_with_the_world_model_planner(tmp_path, capsys, tiny_world_model_files):
    goal = tmp_path / "goal.png"
    render_goal.main(["--task", "reach", "--seed", "2", "--out", str(goal), "--size", "32"])
    plan_goal.main([
        "--goal", str(goal), "--policy", "planner", "--planner", "mppi", "--steps", "3", "--log-dir", str(tmp_path / "log"),
        "env.image_size=32", *tiny_world_model_files,
    ])
    lines = capsys.readouterr().out.strip().splitlines()
    steps = [l for l in lines if l.startswith("step ")]
    assert len(steps) == 3 and all("energy" in l and "distance" in l for l in steps)
    ds = LeRobotDataset(tmp_path / "log")
    actions = ds.episode(0).actions
    assert np.all(np.abs(actions[:, :3]) <= 0.05 + 1e-6) and np.all(actions[:, 3:6] == 0)


def test_plan_goal_through_rendered_subgoals(tmp_path, capsys, tiny_world_model_files):
    goal = tmp_path / "goal.png"
    render_goal.main(["--task", "pick_and_place", "--seed", "2", "--out", str(goal), "--size", "32"])
    printed = capsys.readouterr().out.splitlines()
    subgoals = json.loads(printed[0])["subgoal_images"]
    assert [os.path.basename(p) for p in subgoals] == ["goal.subgoal1.png", "goal.subgoal2.png", "goal.subgoal3.png"]
    assert "--subgoals" in printed[1]
    plan_goal.main([
        "--goal", str(goal), "--subgoals", ",".join(subgoals), "--steps", "8", "--log-dir", str(tmp_path / "log"),
        "env.image_size=32", *tiny_world_model_files,
    ])
    out = capsys.readouterr().out
    assert "goal.json sets env.task=pick_and_place (the config said reach)" in out  # the sidecar's task wins, and says so
    steps = [l for l in out.splitlines() if l.startswith("step ")]
    assert [l.split("goal ")[-1].split()[0] for l in steps] == ["1/4", "1/4", "2/4", "2/4", "3/4", "3/4", "4/4", "4/4"]
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert "broken.png" in user_error(capsys, plan_goal.main, ["--goal", str(goal), "--subgoals", str(tmp_path / "broken.png"), "env.image_size=32", *tiny_world_model_files])


def test_the_sim_camera_must_be_the_one_the_predictor_was_trained_on(tmp_path, capsys, tiny_world_model_files):
    from vjepa_planning.apps import sim_benchmark
    from vjepa_planning.worldmodel.checkpoints import load_module, save_module

    tiny = dict(o.split("=", 1) for o in tiny_world_model_files if o.startswith("world_model."))
    exterior_predictor = tmp_path / "pred_exterior.safetensors"
    save_module(load_module(tiny["world_model.predictor"], kind="predictor"), exterior_predictor, extra={"camera": "exterior"})
    overrides = [*tiny_world_model_files, f"world_model.predictor={exterior_predictor}", "env.image_size=32"]
    goal, exterior_goal = tmp_path / "goal.png", tmp_path / "exterior_goal.png"
    render_goal.main(["--task", "reach", "--seed", "2", "--out", str(goal), "--size", "32"])  # the default camera
    render_goal.main(["--task", "reach", "--seed", "2", "--out", str(exterior_goal), "--size", "32", "--camera", "exterior"])
    assert json.loads(goal.with_suffix(".json").read_text())["camera"] == "workspace"
    err = user_error(capsys, plan_goal.main, ["--goal", str(goal), "--steps", "1", "--log-dir", str(tmp_path / "log"), *overrides])
    assert "trained on the sim's 'exterior' camera, but env.camera=workspace" in err
    # A goal photographed from another camera than the episode's is refused too, whatever the policy.
    err = user_error(capsys, plan_goal.main, ["--goal", str(exterior_goal), "--policy", "random", "--steps", "1", "--log-dir", str(tmp_path / "log"), *overrides])
    assert re.search(r"exterior_goal\.png was rendered from the sim's 'exterior' camera.*set env\.camera=exterior", err)
    err = user_error(capsys, sim_benchmark.main, ["--seeds", "1", "--workers", "1", "--out", str(tmp_path / "bench"), "tasks=[reach]", *overrides])
    assert "set world_model.camera=exterior" in err
    assert not (tmp_path / "log").exists() and not (tmp_path / "bench").exists()  # refused before anything ran
    # The shipped gripper readout reads workspace frames: from exterior it is refused too, until it is switched off.
    err = user_error(capsys, plan_goal.main, ["--goal", str(exterior_goal), "--steps", "1", "--log-dir", str(tmp_path / "log"), "world_model.camera=exterior", *overrides])
    assert re.search(r"gripper readout .*readout_sim_workspace.* trained on the sim's 'workspace' camera.*world_model\.readout=null", err)
    # The matching camera plans (env.camera follows world_model.camera), and the episode is logged under its name.
    plan_goal.main(["--goal", str(exterior_goal), "--steps", "1", "--log-dir", str(tmp_path / "log"), "world_model.camera=exterior",
                    "world_model.readout=null", *overrides])
    ds = LeRobotDataset(tmp_path / "log")
    assert ds.episode_frames(0, "exterior").shape[1:] == (32, 32, 3)
    # The oracle and random policies need no world model, so no camera check.
    plan_goal.main(["--goal", str(goal), "--policy", "random", "--steps", "1", "--log-dir", str(tmp_path / "log2"), *overrides])
    assert LeRobotDataset(tmp_path / "log2").num_episodes == 1


def test_plan_goal_names_a_missing_checkpoint(tmp_path, capsys):
    goal = tmp_path / "goal.png"
    render_goal.main(["--task", "reach", "--seed", "2", "--out", str(goal), "--size", "32"])
    err = user_error(capsys, plan_goal.main, ["--goal", str(goal), "--policy", "planner", "env.image_size=32", "world_model.encoder=/nonexistent.safetensors"])
    assert "world_model.encoder" in err


def test_sim_benchmark_writes_table_json_and_plot(tmp_path, capsys):
    from vjepa_planning.apps import sim_benchmark

    out = tmp_path / "bench"
    sim_benchmark.main(["--seeds", "2", "--workers", "2", "--out", str(out), "policies=[random,oracle]", "tasks=[reach,grasp]", "env.image_size=32"])
    summary = json.loads((out / "results.json").read_text())
    rows = {(r["task"], r["policy"]): r for r in summary["summary"]}
    assert rows[("reach", "oracle")]["successes"] == 2 and rows[("grasp", "oracle")]["successes"] == 2
    assert len(summary["episodes"]) == 8
    streamed = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert sorted(map(json.dumps, streamed)) == sorted(map(json.dumps, summary["episodes"]))
    lo, hi = rows[("reach", "oracle")]["ci95"]
    assert 0.3 < lo < 0.4 and hi == 1.0  # Wilson interval for 2/2
    assert (out / "results.md").read_text().count("\n") == 2 + 4
    assert Image.open(out / "results.png").size[0] > 200


def test_sim_benchmark_multirun_sweeps_one_job_per_value(tmp_path):
    """`-m` is a Hydra sweep: one sim-benchmark per combination, each in `<out>/<its sweep values>/` with
    its composed config; the fixed overrides apply to every job."""
    from vjepa_planning.apps import sim_benchmark

    out = tmp_path / "sweep"
    with pytest.raises(SystemExit) as done:
        sim_benchmark.main(["-m", "--workers", "1", "--out", str(out), "policies=[oracle]", "tasks=[reach]",
                            "env.image_size=32", "seeds=1", "first_seed=5,6"])
    assert done.value.code == 0
    jobs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert jobs == ["first_seed=5", "first_seed=6"]
    for job in jobs:
        summary = json.loads((out / job / "results.json").read_text())
        assert [e["seed"] for e in summary["episodes"]] == [int(job.split("=")[1])]
        assert summary["config"]["out"] == str(out / job) and summary["config"]["env"]["image_size"] == 32
        assert (out / job / ".hydra" / "config.yaml").is_file()


def test_sim_benchmark_plans_through_subgoals(tmp_path, tiny_world_model_files):
    import rerun.chunk as rrc

    from vjepa_planning.apps import sim_benchmark

    out = tmp_path / "bench"
    sim_benchmark.main([
        "--seeds", "1", "--workers", "1", "--out", str(out), "--rerun", str(tmp_path / "rrd"), "policies=[planner]",
        "tasks=[pick_and_place]", "env.image_size=32", "max_steps=3", "subgoals.enabled=true", "subgoals.switch_every=1",
        *tiny_world_model_files,
    ])  # fmt: skip
    episode = json.loads((out / "results.json").read_text())["episodes"][0]
    assert episode["steps"] == 3 and episode["goal_images"] == 4
    rrd = next((tmp_path / "rrd").glob("*.rrd"))
    entities = {str(c.entity_path) for c in rrc.RrdReader(str(rrd)).stream()}
    assert {"/goal/image", "/goal/subgoal_1", "/goal/subgoal_2"} <= entities


def test_wilson_interval_matches_known_values():
    from vjepa_planning.control.evaluation import wilson_interval

    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-3) and hi == pytest.approx(0.9565, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0
    for n in range(1, 80):  # the interval always holds the observed rate (plot error bars must be >= 0)
        for k in (0, 1, n - 1, n):
            lo, hi = wilson_interval(k, n)
            assert lo <= k / n <= hi


@pytest.mark.slow
def test_readme_main_command_reaches_the_goal_with_the_shipped_model(tmp_path, monkeypatch, capsys):
    """render-goal + plan-goal with no other flag than an eager rollout: the shipped encoder, predictor and
    readout and the default planner on the sim. (.ci/wheel_install runs the command exactly as written,
    compiled, and checks its success too.)"""
    monkeypatch.chdir(tmp_path)
    render_goal.main(["--task", "reach", "--seed", "0", "--out", "goal.png"])
    plan_goal.main(["--goal", "goal.png", "world_model.compile=false"])
    out = capsys.readouterr().out
    assert "policy=planner" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["success"] is True and result["final_distance"] < 0.04
    assert LeRobotDataset(tmp_path / "runs" / "plan_goal").num_episodes == 1
