"""post-train as separate processes: kill -9 mid-run then resume == uninterrupted, and DDP over 2 CPU
processes (gloo) ending with identical weights on both ranks."""

import json
import sys

import pytest
from post_train_inputs import PRED, make_dataset, save_encoder
from training_processes import check_sigkill_then_resume, run

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.train import build_predictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest

ARGS = [*(f"predictor.{k}={v}" for k, v in PRED.items()),  # the predictor the in-process tests train
        "threads=1", "train.batch_size=4", "train.log_every=1", "train.warmup_steps=5", "train.val_max_clips=16",
        "camera=exterior"]


def cli(data, enc, run_dir, out, *extra):
    return [sys.executable, "-m", "vjepa_planning.apps.post_train", "--data", str(data), "--encoder", str(enc), "--run-dir",
            str(run_dir), "--out", str(out), *ARGS, *extra]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_weights(tmp_path):
    data = make_dataset(tmp_path / "d", episodes=6)
    enc = save_encoder(tmp_path / "enc.safetensors")
    check_sigkill_then_resume(lambda run_dir, out: cli(data, enc, run_dir, out, "train.steps=40", "train.checkpoint_every=6"),
                              tmp_path, steps=40, first_checkpoint=6, slow_down="train.step_delay_s=0.15", kill_at=15)


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
