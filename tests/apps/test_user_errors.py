"""Bad input to every command is one line, `<command>: error: <what>`, exit code 2, naming the file or the
setting; `--debug` keeps the traceback. The corpus: files of zero bytes, truncated, random bytes, the wrong
kind, the wrong shape, missing."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from vjepa_planning.apps import plan_goal, post_train, pretrain_encoder, render_goal, sim_benchmark, train_lewm

RNG = np.random.default_rng(0)


def png_bytes(shape=(32, 32, 3)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 255, shape, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def refused(capsys, command, argv, name: str) -> str:
    capsys.readouterr()
    assert command(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"{name}: error: "), err
    return err


GOALS = {
    "zero_bytes.png": b"",
    "truncated.png": png_bytes()[:60],
    "random.png": os.urandom(2048),
    "text.png": b"this is not an image\n" * 10,
    "one_pixel.png": png_bytes((1, 1, 3)),
}


@pytest.mark.parametrize("name", [*GOALS, "missing.png"])
def test_bad_goal_images(tmp_path, capsys, name):
    goal = tmp_path / name
    if name in GOALS:
        goal.write_bytes(GOALS[name])
    err = refused(capsys, plan_goal.main, ["--goal", str(goal), "--policy", "random", "--steps", "1", "env.image_size=32"], "plan-goal")
    assert name in err


@pytest.mark.parametrize("damage", ["zero_bytes", "truncated", "random", "flipped_bits", "wrong_kind"])
def test_bad_checkpoints(tmp_path, capsys, tiny_world_model_files, damage):
    files = dict(o.split("=", 1) for o in tiny_world_model_files if o.startswith("world_model."))
    good = open(files["world_model.predictor"], "rb").read()
    bad = tmp_path / "predictor.safetensors"
    if damage == "flipped_bits":
        raw = bytearray(good)
        for i in range(len(raw) - 400, len(raw), 4):  # sign bits near the end of the tensor data
            raw[i + 3] ^= 0x80
        bad.write_bytes(bytes(raw))
    elif damage == "wrong_kind":
        bad.write_bytes(open(files["world_model.encoder"], "rb").read())
    else:
        bad.write_bytes({"zero_bytes": b"", "truncated": good[: len(good) // 3], "random": os.urandom(4096)}[damage])
    goal = tmp_path / "goal.png"
    render_goal.main(["--task", "reach", "--seed", "1", "--out", str(goal), "--size", "32"])
    argv = ["--goal", str(goal), "--steps", "1", "env.image_size=32", *tiny_world_model_files, f"world_model.predictor={bad}"]
    err = refused(capsys, plan_goal.main, argv, "plan-goal")
    assert "predictor.safetensors" in err


@pytest.mark.parametrize("damage", ["missing", "empty_dir", "garbage_info", "wrong_kind"])
def test_bad_datasets(tmp_path, capsys, damage):
    data = tmp_path / "data"
    if damage == "empty_dir":
        data.mkdir()
    elif damage == "garbage_info":
        (data / "meta").mkdir(parents=True)
        (data / "meta" / "info.json").write_bytes(os.urandom(300))
    elif damage == "wrong_kind":
        data.write_text("a file, not a dataset folder")
    for command, name in ((post_train.main, "post-train"), (pretrain_encoder.main, "pretrain-encoder"),
                          (train_lewm.main, "train-lewm")):
        err = refused(capsys, command, ["--data", str(data), f"run_dir={tmp_path / 'run'}"], name)
        assert "data" in err


def test_unknown_names_and_bad_overrides(tmp_path, capsys):
    err = refused(capsys, render_goal.main, ["--task", "juggle", "--out", str(tmp_path / "g.png")], "render-goal")
    assert "juggle" in err
    err = refused(capsys, plan_goal.main, ["--goal", "x.png", "planner=no_such_preset"], "plan-goal")
    assert "no_such_preset" in err
    err = refused(capsys, sim_benchmark.main, ["--seeds", "1", "no_such_key=1"], "sim-benchmark")
    assert "no_such_key" in err
    err = refused(capsys, render_goal.main, ["--task", "reach", "--camera", "ceiling", "--out", str(tmp_path / "g.png")], "render-goal")
    assert "ceiling" in err


def test_hyphenated_task_names_are_accepted(tmp_path, capsys):
    goal = tmp_path / "goal.png"
    assert render_goal.main(["--task", "reach-with-object", "--seed", "1", "--out", str(goal), "--size", "32"]) in (None, 0)
    assert json.loads(goal.with_suffix(".json").read_text())["task"] == "reach_with_object"


def test_debug_keeps_the_traceback(tmp_path, monkeypatch):
    goal = tmp_path / "zero.png"
    goal.write_bytes(b"")
    with pytest.raises(ValueError, match="zero.png"):
        plan_goal.main(["--goal", str(goal), "--policy", "random", "--debug"])
    monkeypatch.setenv("VJEPA_DEBUG", "1")
    with pytest.raises(ValueError, match="zero.png"):
        plan_goal.main(["--goal", str(goal), "--policy", "random"])
