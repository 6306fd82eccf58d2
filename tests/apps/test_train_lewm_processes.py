"""train-lewm as separate processes: SIGKILL mid-run then resume == uninterrupted, and DDP over 2 CPU
processes (gloo) ending with identical weights on both ranks."""

import json
import sys

import pytest
from synthetic_datasets import write_square_dataset
from training_processes import check_sigkill_then_resume, run

from vjepa_planning.worldmodel import checkpoints

TINY = ["img_size=32", "model.patch_size=8", "model.encoder_width=32", "model.encoder_depth=1", "model.encoder_heads=2",
        "model.embed_dim=16", "model.proj_hidden=32", "model.predictor_width=32", "model.predictor_depth=1",
        "model.predictor_heads=2", "train.batch_size=4", "train.num_frames=4", "train.warmup_steps=3", "threads=1",
        "log_every=1", "camera=exterior", "device=cpu"]


def cli(data, run_dir, out, *extra):
    return [sys.executable, "-m", "vjepa_planning.apps.train_lewm", "--data", str(data), "--run-dir", str(run_dir), "--out", str(out),
            *TINY, *extra]


@pytest.fixture
def data(tmp_path):
    write_square_dataset(tmp_path / "d", [12] * 6, size=32, seed=0)
    return tmp_path / "d"


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_weights(data, tmp_path):
    check_sigkill_then_resume(lambda run_dir, out: cli(data, run_dir, out, "train.steps=30", "checkpoint_every=5"),
                              tmp_path, steps=30, first_checkpoint=5, slow_down="step_delay_s=0.15", kill_at=12)


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_weights(data, tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "vjepa_planning.apps.train_lewm", "--data", str(data), "--run-dir", str(run_dir), "--out", str(tmp_path / "m.safetensors"),
           *TINY, "train.steps=8"]
    run(cmd)
    r0, r1 = (json.loads((run_dir / f"final_rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2 and r0["step"] == r1["step"] == 8
    assert r0["weights_sha256"] == r1["weights_sha256"]
    saved, _ = checkpoints.read_safetensors(tmp_path / "m.safetensors")
    assert checkpoints.tensors_sha256(saved) == r0["weights_sha256"]
    single = tmp_path / "single"
    run(cli(data, single, tmp_path / "s.safetensors", "train.steps=8"))
    s, _ = checkpoints.read_safetensors(tmp_path / "s.safetensors")
    assert checkpoints.tensors_sha256(s) != r0["weights_sha256"]  # two ranks trained on twice the clips
