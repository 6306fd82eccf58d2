"""post-train --data DIR: train the action-conditioned predictor on frozen-encoder features.

The frozen encoder's features are computed once and cached in DIR/.feature_cache/<key>/ (the key
hashes encoder weights, architecture and preprocessing). Kill it at any time: the same command
resumes from `run_dir/state.pt`. Multi-process (DDP): `torchrun --nproc_per_node N -m vjepa_planning.apps.post_train ...`.
Prints a JSON summary with held-out validation L1 against the copy-the-last-frame baseline.
"""

from __future__ import annotations

import json
import shlex
import sys

from omegaconf import DictConfig, OmegaConf

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.configs import resolve_path
from vjepa_planning.worldmodel.model_card import predictor_card


def train_config(cfg: DictConfig):
    from vjepa_planning.worldmodel.train import TrainConfig

    t = OmegaConf.to_container(cfg.train, resolve=True)
    return TrainConfig(**{**t, "betas": tuple(t["betas"])}, seed=int(cfg.seed))


def run(cfg: DictConfig, progress: bool = True) -> dict:
    from vjepa_planning.worldmodel.train import post_train

    return post_train(
        cfg.data, resolve_path(cfg.encoder_path, "encoder_path"), OmegaConf.to_container(cfg.predictor), train_config(cfg), run_dir=cfg.run_dir,
        out=cfg.out, camera=cfg.camera, device=cfg.device, threads=cfg.threads, progress=progress,
        init_from=resolve_path(cfg.init_from, "init_from") if cfg.get("init_from") else None,
    )


@command("post-train")
def main(argv: list[str] | None = None) -> None:
    cfg = parse(
        "post_train",
        __doc__.splitlines()[0],
        {
            "--data": ("data", "trajectory dataset directory (LeRobot v3.0)"),
            "--encoder": ("encoder_path", "frozen encoder safetensors (from pretrain-encoder)"),
            "--out": ("out", "predictor safetensors to write"),
            "--run-dir": ("run_dir", "folder for the resume state, logs and metrics"),
            "--steps": ("train.steps", "optimisation steps"),
            "--device": ("device", "cpu, cuda or auto"),
        },
        argv,
    )
    summary = run(cfg)
    if summary.get("rank", 0) == 0:
        if summary.get("complete") and summary.get("out"):
            args = sys.argv[1:] if argv is None else argv
            summary["model_card"] = str(predictor_card(OmegaConf.to_container(cfg, resolve=True), "post-train " + shlex.join(args)))
        print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
