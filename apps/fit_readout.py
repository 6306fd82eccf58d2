"""fit-readout --data DIR: fit the gripper readout (is the hand closed?), a small CNN on the camera frames.

The planner reads each goal image's gripper with it and scores every candidate's imagined gripper against
that (`planner.gripper_goal_weight`), where the embedding distance barely sees the fingers. Fit on the same
logged frames and gripper states post-train uses, with the same held-out episodes; prints a JSON summary
with the held-out accuracy and writes a model card beside the file.
"""

from __future__ import annotations

import json
import shlex
import sys

from omegaconf import OmegaConf

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.worldmodel.model_card import readout_card


@command("fit-readout")
def main(argv: list[str] | None = None) -> None:
    import torch

    from vjepa_planning.worldmodel.readout import fit_readout_on_dataset

    cfg = parse(
        "fit_readout",
        __doc__.splitlines()[0],
        {
            "--data": ("data", "trajectory dataset directory (LeRobot v3.0)"),
            "--camera": ("camera", "the dataset camera to read (the one the world model plans from)"),
            "--out": ("out", "readout safetensors to write"),
        },
        argv,
    )
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    summary = fit_readout_on_dataset(cfg.data, camera=cfg.camera, out=cfg.out, frame_step=int(cfg.frame_step),
                                     val_fraction=float(cfg.val_fraction), epochs=int(cfg.epochs), batch_size=int(cfg.batch_size),
                                     lr=float(cfg.lr), weight_decay=float(cfg.weight_decay), img_size=int(cfg.img_size), seed=int(cfg.seed))
    args = sys.argv[1:] if argv is None else argv
    summary["model_card"] = str(readout_card(OmegaConf.to_container(cfg, resolve=True), "fit-readout " + shlex.join(args)))
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
