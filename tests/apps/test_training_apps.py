"""pretrain-encoder and post-train end to end on a tiny synthetic dataset, chained as in the recipe; train-lewm
end to end, then planning with world_model=lewm."""

import json

import numpy as np
import pytest
import torch
from synthetic_datasets import write_square_dataset

from vjepa_planning.apps import fit_readout, post_train, pretrain_encoder, train_lewm
from vjepa_planning.configs import compose_config
from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset
from vjepa_planning.worldmodel.world_model import VJEPAWorldModel

TINY_ENCODER = ["encoder.name=vit_micro", "encoder.img_size=32", "encoder.patch_size=8",
                "mask_predictor.predictor_embed_dim=32", "mask_predictor.depth=1", "mask_predictor.num_heads=2"]
TINY_PREDICTOR = ["predictor.predictor_embed_dim=32", "predictor.depth=1", "predictor.num_heads=2"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


def make_dataset(root, episodes=6, length=10, size=40):
    write_square_dataset(root, [length] * episodes, size=size, step=0.05, start=(0.3, 0.7), bounds=(0.2, 0.8),
                         background=40, colour=230, task="reach")
    return root


def test_configs_compose_with_the_decided_sizes():
    pre = compose_config("pretrain_encoder")
    assert (pre.encoder.name, pre.encoder.img_size, pre.encoder.patch_size, pre.encoder.tubelet_size) == \
        ("vit_mini", 96, 16, 2)
    post = compose_config("post_train")
    p = post.predictor
    assert (p.predictor_embed_dim, p.depth, p.num_heads, p.mlp_ratio) == (128, 4, 4, 4.0)
    assert post.train.num_frames == 8 and post.train.rollout_steps == 2 and post.train.weight_decay == 0.04


def test_pretrain_then_post_train_then_load_the_world_model(tmp_path, capsys):
    data = make_dataset(tmp_path / "data")
    enc = tmp_path / "enc.safetensors"
    pretrain_encoder.main(["--data", str(data), "--out", str(enc), "--run-dir", str(tmp_path / "pre"),
                           "--steps", "6", "train.batch_size=4", "train.warmup_steps=2", "threads=1", "camera=exterior",
                           *TINY_ENCODER])
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["complete"] and s["out"] == str(enc) and s["held_out_episodes"] >= 1
    assert (tmp_path / "pre" / "log.jsonl").exists() and (tmp_path / "pre" / "state.pt").exists()
    _, meta = checkpoints.read_safetensors(enc)
    assert meta["kind"] == "encoder" and meta["arch"]["img_size"] == 32
    card = (tmp_path / "enc.md").read_text()  # the model card: recipe, data, loss
    assert "pretrain-encoder --data" in card and "train.batch_size=4" in card and "final" in card

    pred = tmp_path / "pred.safetensors"
    post_train.main(["--data", str(data), "--encoder", str(enc), "--out", str(pred), "--run-dir",
                     str(tmp_path / "post"), "--steps", "6", "train.batch_size=4", "train.warmup_steps=2",
                     "threads=1", "camera=exterior", *TINY_PREDICTOR])
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["complete"] and "teacher_forcing" in s["validation"]
    assert (data / ".feature_cache").is_dir()
    card = (tmp_path / "pred.md").read_text()
    assert "post-train --data" in card and "copy last frame" in card and "from_safetensors" in card
    wm = VJEPAWorldModel.from_safetensors(enc, pred)
    frame = np.zeros((40, 40, 3), np.uint8)
    z = wm.encode(frame)
    assert z.shape == (1, 16, 64)
    assert wm.rollout(z, torch.zeros(1, 7), torch.zeros(3, 2, 7)).shape == (3, 2, 16, 64)


TINY_LEWM = ["img_size=40", "model.patch_size=8", "model.encoder_width=32", "model.encoder_depth=1",
             "model.encoder_heads=2", "model.embed_dim=16", "model.proj_hidden=32", "model.predictor_width=32",
             "model.predictor_depth=1", "model.predictor_heads=2", "train.batch_size=4", "train.warmup_steps=2",
             "train.num_frames=4", "threads=1"]


def test_train_lewm_then_plan_with_it(tmp_path, capsys):
    from vjepa_planning.control.build import load_world_model, make_mpc

    data = make_dataset(tmp_path / "data")
    out = tmp_path / "lewm.safetensors"
    assert train_lewm.main(["--data", str(data), "--out", str(out), "--run-dir", str(tmp_path / "run"), "--steps", "6",
                            "camera=exterior", *TINY_LEWM]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["complete"] and s["out"] == str(out) and "ratio_model_to_copy" in s["validation"]
    card = (tmp_path / "lewm.md").read_text()
    assert "train-lewm --data" in card and "SIGReg" in card and "effective rank" in card
    cfg = compose_config("plan_goal", ["world_model=lewm", f"world_model.path={out}", "planner.num_samples=8",
                                       "planner.iterations=1", "planner.num_elites=2", "planner.context_frames=2"])
    wm = load_world_model(cfg.world_model)
    z = wm.encode(np.zeros((2, 40, 40, 3), np.uint8))
    assert z.shape == (2, 1, 16)
    mpc = make_mpc(wm, cfg.planner)
    assert mpc.planner.cfg.num_samples == 8


def test_train_lewm_refuses_a_collapse_with_exit_code_1(tmp_path, capsys):
    data = make_dataset(tmp_path / "data")
    code = train_lewm.main(["--data", str(data), "--out", str(tmp_path / "m.safetensors"), "--run-dir",
                            str(tmp_path / "run"), "--steps", "6", "camera=exterior", "train.collapse_after=2",
                            "train.min_effective_rank=1000", *TINY_LEWM])
    assert code == 1 and "collapsed at step 2" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


def write_gripper_dataset(root, episodes: int = 8, length: int = 12, size: int = 32):
    """Episodes whose 'hand' (two bright bars) closes halfway through: the gap between the bars fills in, and
    the measured gripper goes from 0 to 0.47 (pinching) or 1 (closed on nothing)."""
    from vjepa_planning.worldmodel.data.lerobot import DatasetWriter

    rng = np.random.default_rng(0)
    with DatasetWriter(root, 4, {"workspace": (size, size)}, {}, fsync=False) as w:
        for ep in range(episodes):
            r, q = rng.integers(2, size - 10, 2)
            for t in range(length):
                closed = t >= length // 2
                img = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
                img[r : r + 8, q : q + 3] = img[r : r + 8, q + 5 : q + 8] = 220
                if closed:
                    img[r : r + 8, q + 3 : q + 5] = 220
                state = np.array([0.5, 0.0, 0.2, np.pi, 0, 0, (0.47 if ep % 2 else 1.0) if closed else 0.0], np.float32)
                w.add_frame(state, np.zeros(7, np.float32), {"workspace": img}, "grasp")
            w.save_episode()
    return root


def test_fit_readout_then_plan_with_it(tmp_path, capsys, tiny_world_model_files):
    from vjepa_planning.control.build import load_world_model

    data, out = write_gripper_dataset(tmp_path / "data", episodes=32), tmp_path / "readout.safetensors"
    fit_readout.main(["--data", str(data), "--out", str(out), "img_size=32", "epochs=8", "batch_size=32", "frame_step=1", "val_fraction=0.25"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["val_frames"] > 0 and summary["val_accuracy"] > 0.9 and summary["closed_share"] == 0.5
    card = (tmp_path / "readout.md").read_text()
    assert "fit-readout --data" in card and f"{summary['val_accuracy']:.4f}" in card
    cfg = compose_config("plan_goal", [*tiny_world_model_files, f"world_model.readout={out}"])
    wm = load_world_model(cfg.world_model)
    frames = LeRobotDataset(data).episode_frames(0, "workspace")
    p = wm.gripper_closed(frames).numpy()
    assert (p[-1] > 0.5 > p[0]) and wm.readout is not None
    # A dataset whose hand never closes cannot teach it: refused in one line, nothing written.
    open_only = make_dataset(tmp_path / "open_only")
    capsys.readouterr()
    assert fit_readout.main(["--data", str(open_only), "--camera", "exterior", "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "open and with it closed" in err and not (tmp_path / "x.safetensors").exists()


def test_cfg_flag_prints_the_config(capsys):
    with pytest.raises(SystemExit):
        post_train.main(["--data", "somewhere", "--encoder", "e.safetensors", "--cfg"])
    out = capsys.readouterr().out
    assert "data: somewhere" in out and "encoder_path: e.safetensors" in out
