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

from omegaconf import DictConfig, OmegaConf

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.worldmodel.model_card import encoder_card


def run(cfg: DictConfig, progress: bool = True) -> dict:
    from vjepa_planning.worldmodel.pretrain import pretrain_config, pretrain_from_dataset

    return pretrain_from_dataset(
        cfg.data, cfg.camera, OmegaConf.to_container(cfg.encoder), OmegaConf.to_container(cfg.mask_predictor),
        pretrain_config(OmegaConf.to_container(cfg.train, resolve=True), int(cfg.seed)), run_dir=cfg.run_dir,
        out=cfg.out, val_fraction=cfg.val_fraction, checkpoint_every=cfg.checkpoint_every, log_every=cfg.log_every,
        export_dtype=cfg.export_dtype, device=cfg.device, threads=cfg.threads, progress=progress,
        config=OmegaConf.to_container(cfg, resolve=True),
    )


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
