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

from omegaconf import DictConfig, OmegaConf

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.worldmodel.model_card import lewm_card


def run(cfg: DictConfig, progress: bool = True) -> dict:
    from vjepa_planning.worldmodel.lewm.train import LeWMTrainConfig, train_lewm_from_dataset

    t = OmegaConf.to_container(cfg.train, resolve=True)
    return train_lewm_from_dataset(
        cfg.data, cfg.camera, int(cfg.img_size), OmegaConf.to_container(cfg.model),
        LeWMTrainConfig(**{**t, "betas": tuple(t["betas"])}, seed=int(cfg.seed)), run_dir=cfg.run_dir, out=cfg.out,
        val_fraction=cfg.val_fraction, checkpoint_every=cfg.checkpoint_every, log_every=cfg.log_every,
        step_delay_s=cfg.step_delay_s, device=cfg.device, threads=cfg.threads, progress=progress,
        config=OmegaConf.to_container(cfg, resolve=True),
    )


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
