"""train-lewm --data DIR: train a LeWorldModel (encoder + predictor from pixels, with SIGReg).

Multi-process (DDP): `torchrun --nproc_per_node N -m vjepa_planning.apps.train_lewm ...` (train.batch_size is per rank).
Videos of the training episodes are decoded once into memory (uint8 at `img_size`) with their actions;
clips of `train.num_frames` frames are encoded, the predictor predicts each next embedding from the
ones before it and the actions, and SIGReg keeps the embeddings Gaussian. Kill it at any time: the same
command resumes from `run_dir/state.pt`. A run whose embeddings collapse stops with a message. The
model (one safetensors file, `world_model=lewm` plans with it) is written to `out` when complete.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.worldmodel.model_card import lewm_card


def run(cfg: DictConfig, progress: bool = True) -> dict:
    from vjepa_planning.worldmodel.data.clips import split_episodes
    from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset
    from vjepa_planning.worldmodel.lewm.train import LeWMTrainConfig, build_trainer, train_lewm
    from vjepa_planning.worldmodel.pretrain import load_clip_memory
    from vjepa_planning.worldmodel.train import init_distributed, resolve_device

    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = resolve_device(cfg.device)
    dd = init_distributed(device)
    if device.type == "cuda" and dd.world_size > 1:
        device = torch.device("cuda", dd.rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    t = OmegaConf.to_container(cfg.train, resolve=True)
    tcfg = LeWMTrainConfig(**{**t, "betas": tuple(t["betas"])}, seed=int(cfg.seed))
    dataset = LeRobotDataset(cfg.data, on_error="skip")
    train_eps, val_eps = split_episodes(dataset.episode_indices, float(cfg.val_fraction), int(cfg.seed))
    size = int(cfg.img_size)
    progress = progress and dd.main
    memory = load_clip_memory(dataset, cfg.camera, size, train_eps, progress=progress, with_actions=True)
    val = load_clip_memory(dataset, cfg.camera, size, val_eps, progress=progress, with_actions=True) if val_eps else None
    trainer = build_trainer(OmegaConf.to_container(cfg.model), tcfg, memory, device)
    meta = {"data": str(cfg.data), "camera": cfg.camera, "train_episodes": len(train_eps),
            "train_frames": memory.num_frames, "held_out_episodes": len(val_eps),
            "config": OmegaConf.to_container(cfg, resolve=True)}
    summary = train_lewm(trainer, memory, cfg.run_dir, cfg.out, val_memory=val, checkpoint_every=int(cfg.checkpoint_every),
                         log_every=int(cfg.log_every), progress=progress, extra_meta={"camera": cfg.camera, "data": meta},
                         step_delay_s=float(cfg.step_delay_s))
    summary.update(train_episodes=len(train_eps), train_frames=memory.num_frames, held_out_episodes=len(val_eps))
    if dd.world_size > 1:
        from vjepa_planning.worldmodel.run_state import atomic_write_text

        atomic_write_text(Path(cfg.run_dir) / f"final_rank{dd.rank}.json", json.dumps(summary, indent=1))
    return summary


@command("train-lewm")
def main(argv: list[str] | None = None) -> int:
    cfg = parse(
        "train_lewm",
        __doc__.splitlines()[0],
        {
            "--data": ("data", "trajectory dataset directory (LeRobot v3.0)"),
            "--out": ("out", "LeWM safetensors to write"),
            "--run-dir": ("run_dir", "folder for the resume state and the loss log"),
            "--steps": ("train.steps", "optimisation steps"),
            "--device": ("device", "cpu, cuda, cuda:1 or auto"),
        },
        argv,
    )
    from vjepa_planning.worldmodel.lewm.train import EmbeddingCollapse

    try:
        summary = run(cfg)
    except EmbeddingCollapse as e:  # the resume state is kept: the message says what to change
        print(str(e), file=sys.stderr)
        return 1
    if summary.get("complete") and summary.get("out") and summary.get("rank", 0) == 0:
        args = sys.argv[1:] if argv is None else argv
        summary["model_card"] = str(lewm_card(cfg.out, cfg.run_dir, "train-lewm " + shlex.join(args)))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
