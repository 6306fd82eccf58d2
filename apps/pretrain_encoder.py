"""pretrain-encoder --data DIR: V-JEPA masked-latent pretraining of the small embedded encoder.

Videos of the training episodes are decoded once into memory (uint8 at the encoder's input size);
clips are sampled, lightly augmented and masked with multi-block masks; the EMA target encoder is
written to `out` (our safetensors format) when the run completes. Kill it at any time: the same
command resumes from `run_dir/state.pt`. The loss log is `run_dir/log.jsonl`.
"""

from __future__ import annotations

import json
import shlex
import sys

import torch
from omegaconf import DictConfig, OmegaConf

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.worldmodel.model_card import encoder_card


def run(cfg: DictConfig, progress: bool = True) -> dict:
    from vjepa_planning.worldmodel.data.clips import split_episodes
    from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset
    from vjepa_planning.worldmodel.pretrain import build_pretrainer, load_clip_memory, pretrain, pretrain_config
    from vjepa_planning.worldmodel.train import resolve_device

    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = resolve_device(cfg.device)
    dataset = LeRobotDataset(cfg.data, on_error="skip")
    train_eps, val_eps = split_episodes(dataset.episode_indices, float(cfg.val_fraction), int(cfg.seed))
    pcfg = pretrain_config(OmegaConf.to_container(cfg.train, resolve=True), int(cfg.seed))
    memory = load_clip_memory(dataset, cfg.camera, int(cfg.encoder.img_size), train_eps, progress=progress)
    trainer = build_pretrainer(OmegaConf.to_container(cfg.encoder), OmegaConf.to_container(cfg.mask_predictor),
                               pcfg, device)
    meta = {"data": str(cfg.data), "camera": cfg.camera, "train_episodes": len(train_eps),
            "train_frames": memory.num_frames, "held_out_episodes": len(val_eps),
            "config": OmegaConf.to_container(cfg, resolve=True)}
    summary = pretrain(trainer, memory, cfg.run_dir, cfg.out, checkpoint_every=int(cfg.checkpoint_every),
                       log_every=int(cfg.log_every), progress=progress, extra_meta={"data": meta},
                       export_dtype=getattr(torch, cfg.export_dtype))
    summary.update(train_episodes=len(train_eps), train_frames=memory.num_frames, held_out_episodes=len(val_eps))
    return summary


@command("pretrain-encoder")
def main(argv: list[str] | None = None) -> None:
    cfg = parse(
        "pretrain_encoder",
        __doc__.splitlines()[0],
        {
            "--data": ("data", "trajectory dataset directory (LeRobot v3.0)"),
            "--out": ("out", "encoder safetensors to write"),
            "--run-dir": ("run_dir", "folder for the resume state and the loss log"),
            "--steps": ("train.steps", "optimisation steps"),
            "--device": ("device", "cpu, cuda, cuda:1 or auto"),
        },
        argv,
    )
    summary = run(cfg)
    if summary.get("complete") and summary.get("out"):
        args = sys.argv[1:] if argv is None else argv
        summary["model_card"] = str(encoder_card(cfg.out, cfg.run_dir, "pretrain-encoder " + shlex.join(args)))
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
