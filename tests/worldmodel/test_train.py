"""Post-training: schedule, losses (padding-exact), a short run that learns, named data errors,
kill -9 + resume == uninterrupted, and DDP over 2 CPU processes (gloo)."""

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_datasets import write_square_dataset
from training_processes import kill_after_logged, run

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.data.clips import EpisodeArrays, collate
from vjepa_planning.worldmodel.data.lerobot import DatasetError
from vjepa_planning.worldmodel.encoder import build_encoder
from vjepa_planning.worldmodel.train import TrainConfig, ac_loss, build_predictor, post_train, wsd_lr
from vjepa_planning.worldmodel.world_model import VJEPAWorldModel

PRED = {"predictor_embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


def make_dataset(root, episodes=8, lengths=None, size=32, seed=0, with_action=True):
    write_square_dataset(root, lengths or [12] * episodes, size=size, seed=seed, extra="observation.cube_pos")
    if not with_action:  # a dataset written by a tool that does not log actions
        info_path = Path(root) / "meta" / "info.json"
        info = json.loads(info_path.read_text())
        del info["features"]["action"]
        info_path.write_text(json.dumps(info))
    return Path(root)


def save_encoder(path, seed=0):
    torch.manual_seed(seed)
    checkpoints.save_module(build_encoder("vit_micro", patch_size=8, img_size=32), path)
    return path


def test_wsd_schedule():
    c = TrainConfig(steps=100, warmup_steps=10, lr=1e-3, start_lr=1e-4, final_lr=0.0, decay_fraction=0.2)
    assert wsd_lr(0, c) == pytest.approx(1e-4) and wsd_lr(10, c) == pytest.approx(1e-3)
    assert wsd_lr(50, c) == wsd_lr(79, c) == pytest.approx(1e-3)  # stable
    assert wsd_lr(90, c) == pytest.approx(5e-4) and wsd_lr(100, c) == pytest.approx(0.0)  # decay


def test_loss_of_a_padded_short_clip_equals_the_loss_of_the_clip_alone():
    torch.manual_seed(0)
    pred = build_predictor(PRED, embed_dim=8, grid_size=2, seed=0)
    rng = np.random.default_rng(0)
    L = 5
    ep = EpisodeArrays(0, rng.normal(size=(L, 7)).astype(np.float32), rng.normal(size=(L, 7)).astype(np.float32),
                       rng.normal(size=(L, 4, 8)).astype(np.float16))
    padded = collate([ep], np.array([[0, 0, L]]), 8)
    alone = collate([ep], np.array([[0, 0, L]]), L)
    lp, ip = ac_loss(pred, padded, 2)
    la, ia = ac_loss(pred, alone, 2)
    torch.testing.assert_close(lp, la)  # block-causal: padding after the clip changes nothing before it
    assert ip["rollout_loss"] == pytest.approx(ia["rollout_loss"])


def test_short_run_learns_beats_nothing_silently_and_writes_a_loadable_predictor(tmp_path):
    data = make_dataset(tmp_path / "d", episodes=10, lengths=[12] * 9 + [5])
    enc = save_encoder(tmp_path / "enc.safetensors")
    cfg = TrainConfig(steps=80, batch_size=8, lr=2e-3, start_lr=2e-3, warmup_steps=0, checkpoint_every=40,
                      log_every=5, val_fraction=0.2)
    out = tmp_path / "pred.safetensors"
    s = post_train(data, enc, PRED, cfg, run_dir=tmp_path / "run", out=out, progress=False)
    assert s["complete"] and s["train_windows"] > 0 and s["val_episodes"] >= 1
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert np.mean([r["loss"] for r in log[-3:]]) < 0.8 * np.mean([r["loss"] for r in log[:2]])
    v = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for group in ("teacher_forcing", "rollout_step1", "rollout_step2", "rollout_2step_mean"):
        assert set(v[group]) == {"model", "copy_last", "ratio_model_to_copy"} and v[group]["copy_last"] > 0
    wm = VJEPAWorldModel.from_safetensors(enc, out)  # the planning pair
    z = wm.encode(np.zeros((32, 32, 3), np.uint8))
    assert wm.rollout(z, torch.zeros(1, 7), torch.zeros(5, 3, 7)).shape == (5, 3, 16, 64)
    _, meta = checkpoints.read_safetensors(out)
    assert meta["extra"]["validation"] == v and meta["extra"]["camera"] == "exterior"


def test_resuming_with_another_recipe_is_refused_and_names_the_change(tmp_path):
    data, enc = make_dataset(tmp_path / "d", 4), save_encoder(tmp_path / "enc.safetensors")
    cfg = TrainConfig(steps=4, batch_size=2, warmup_steps=1, checkpoint_every=2, val_max_clips=4)
    post_train(data, enc, PRED, cfg, run_dir=tmp_path / "run", max_steps_this_call=2, progress=False)
    with pytest.raises(ValueError, match=r"train\.steps: 4 -> 8.*new run_dir"):
        post_train(data, enc, PRED, replace(cfg, steps=8), run_dir=tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match=r"predictor\.depth"):
        post_train(data, enc, {**PRED, "depth": PRED.get("depth", 1) + 1}, cfg, run_dir=tmp_path / "run", progress=False)
    # Bookkeeping settings may change on resume.
    s = post_train(data, enc, PRED, replace(cfg, log_every=1, checkpoint_every=1), run_dir=tmp_path / "run", progress=False)
    assert s["complete"] and s["step"] == 4


def test_init_from_starts_at_the_given_weights_and_refuses_a_mismatch(tmp_path):
    data, enc = make_dataset(tmp_path / "d", 4), save_encoder(tmp_path / "enc.safetensors")
    cfg = TrainConfig(steps=3, batch_size=2, warmup_steps=1, checkpoint_every=10, val_max_clips=4)
    first = tmp_path / "first.safetensors"
    post_train(data, enc, PRED, cfg, run_dir=tmp_path / "run0", out=first, progress=False)
    # no step taken yet: the run's weights are the given predictor's, and the recipe records them
    post_train(data, enc, PRED, cfg, run_dir=tmp_path / "run1", max_steps_this_call=0, progress=False, init_from=first)
    state = torch.load(tmp_path / "run1" / "state.pt", weights_only=False)
    given = checkpoints.load_module(first, kind="predictor").state_dict()
    assert all(torch.equal(state["predictor"][k], v) for k, v in given.items())
    assert state["recipe"]["init_from"]["path"] == str(first)
    fresh = build_predictor(PRED, embed_dim=64, grid_size=4, seed=0).state_dict()
    assert not all(torch.equal(fresh[k], v) for k, v in given.items())
    s = post_train(data, enc, PRED, cfg, run_dir=tmp_path / "run1", out=tmp_path / "second.safetensors",
                   progress=False, init_from=first)
    assert s["complete"] and checkpoints.read_metadata(tmp_path / "second.safetensors")["extra"]["init_from"] == str(first)
    with pytest.raises(ValueError, match=r"init_from .*first.safetensors does not fit .*predictor_blocks\.1"):
        post_train(data, enc, {**PRED, "depth": 2}, cfg, run_dir=tmp_path / "run2", progress=False, init_from=first)
    other = save_encoder(tmp_path / "other.safetensors", seed=1)
    with pytest.raises(ValueError, match=r"init_from .*first.safetensors was post-trained on another encoder"):
        post_train(data, other, PRED, cfg, run_dir=tmp_path / "run3", progress=False, init_from=first)


def test_bad_datasets_name_the_problem(tmp_path):
    enc = save_encoder(tmp_path / "enc.safetensors")
    cfg = TrainConfig(steps=1, batch_size=2)
    with pytest.raises(DatasetError, match="'action'"):
        post_train(make_dataset(tmp_path / "a", 2, with_action=False), enc, PRED, cfg, run_dir=tmp_path / "r1",
                   progress=False)
    with pytest.raises(DatasetError, match="every episode is too short"):
        post_train(make_dataset(tmp_path / "b", 2, lengths=[2, 2]), enc, PRED, cfg, run_dir=tmp_path / "r2",
                   progress=False)
    with pytest.raises(DatasetError, match="required camera 'wrist'"):
        post_train(make_dataset(tmp_path / "c", 2), enc, PRED, cfg, run_dir=tmp_path / "r3", camera="wrist",
                   progress=False)


# ----------------------------------------------------------------------------- subprocess runs

ARGS = ["predictor.predictor_embed_dim=32", "predictor.depth=1", "predictor.num_heads=2", "predictor.mlp_ratio=2.0",
        "threads=1", "train.batch_size=4", "train.log_every=1", "train.warmup_steps=5", "train.val_max_clips=16",
        "camera=exterior"]


def cli(data, enc, run_dir, out, *extra):
    return [sys.executable, "-m", "vjepa_planning.apps.post_train", "--data", str(data), "--encoder", str(enc), "--run-dir",
            str(run_dir), "--out", str(out), *ARGS, *extra]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_weights(tmp_path):
    data = make_dataset(tmp_path / "d", episodes=6)
    enc = save_encoder(tmp_path / "enc.safetensors")
    steps = ["train.steps=40", "train.checkpoint_every=6"]
    run(cli(data, enc, tmp_path / "ra", tmp_path / "a.safetensors", *steps))
    cmd = cli(data, enc, tmp_path / "rb", tmp_path / "b.safetensors", *steps)
    log = tmp_path / "rb" / "log.jsonl"
    kill_after_logged(cmd + ["train.step_delay_s=0.15"], log, 15)
    state = torch.load(tmp_path / "rb" / "state.pt", weights_only=False)
    assert 6 <= state["step"] < 40 and not (tmp_path / "b.safetensors").exists()
    run(cmd)
    a, _ = checkpoints.read_safetensors(tmp_path / "a.safetensors")
    b, _ = checkpoints.read_safetensors(tmp_path / "b.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps_logged = [json.loads(x)["step"] for x in log.read_text().splitlines()]
    assert steps_logged == list(range(1, 41))


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path):
    data = make_dataset(tmp_path / "d", episodes=6)
    enc = save_encoder(tmp_path / "enc.safetensors")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "vjepa_planning.apps.post_train", "--data", str(data), "--encoder", str(enc), "--run-dir", str(run_dir),
           "--out", str(tmp_path / "p.safetensors"), *ARGS, "train.steps=12", "device=cpu"]
    run(cmd)
    r0 = json.loads((run_dir / "final_rank0.json").read_text())
    r1 = json.loads((run_dir / "final_rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2 and r0["step"] == r1["step"] == 12
    assert r0["weights_sha256"] == r1["weights_sha256"]
    init = build_predictor(PRED, embed_dim=64, grid_size=4, seed=0)
    module_sha256 = checkpoints.module_sha256
    assert module_sha256(init) != r0["weights_sha256"]  # and they trained
    saved = checkpoints.load_module(tmp_path / "p.safetensors", kind="predictor")
    assert module_sha256(saved) == r0["weights_sha256"]
