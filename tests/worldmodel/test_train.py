"""Post-training: schedule, losses (padding-exact), a short run that learns, named data errors. Kill -9 +
resume == uninterrupted and DDP over 2 CPU processes (gloo) run post-train as processes:
tests/apps/test_post_train_processes.py."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from post_train_inputs import PRED, make_dataset, save_encoder

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.data.clips import EpisodeArrays, collate
from vjepa_planning.worldmodel.data.lerobot import DatasetError
from vjepa_planning.worldmodel.train import TrainConfig, ac_loss, build_predictor, post_train, wsd_lr
from vjepa_planning.worldmodel.world_model import VJEPAWorldModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


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
