"""The tiny dataset, encoder and predictor sizes post-training is tested with, in process
(tests/worldmodel/test_train.py) and as post-train processes (tests/apps/test_post_train_processes.py)."""

import json
from pathlib import Path

import torch
from synthetic_datasets import write_square_dataset

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.encoder import build_encoder

PRED = {"predictor_embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}


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
