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
from vjepa_planning.worldmodel.model_card import log_wall_time, write_card


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


def write_model_card(out: str | Path, run_dir: str | Path, command: str) -> Path:
    """``<out>.md`` beside the weights: data, recipe (config + command), training curve, validation."""
    from vjepa_planning.worldmodel import checkpoints
    from vjepa_planning.worldmodel.run_state import log_rows

    out, run_dir = Path(out), Path(run_dir)
    sd, meta = checkpoints.read_safetensors(out)
    extra, arch = meta["extra"], meta["arch"]
    data, val = extra.get("data", {}), extra.get("validation", {})
    cfg = data.get("config", {})
    rows = log_rows(run_dir)
    n_enc = sum(v.numel() for k, v in sd.items() if k.startswith("encoder."))
    n_pred = sum(v.numel() for k, v in sd.items() if k.startswith("predictor."))
    first, last = (rows[0], rows[-1]) if rows else ({}, {})
    card = f"""# {out.stem}: LeWorldModel (encoder + predictor from pixels, SIGReg) for the sim Franka scenes

`{out.name}` ({out.stat().st_size / 2**20:.1f} MB, format `{meta['format']}` kind `{meta['kind']}`, sha256 of
the tensors `{meta['content_sha256'][:16]}...`): a {arch['img_size']} px ViT encoder ({arch['encoder_depth']} blocks of
{arch['encoder_width']}, {arch['patch_size']} px patches, CLS -> projector with BatchNorm -> {arch['embed_dim']}-d,
{n_enc / 1e6:.2f} M parameters) and a causal predictor over one token per frame ({arch['predictor_depth']} AdaLN-zero
blocks of {arch['predictor_width']} conditioned on the actions, {n_pred / 1e6:.2f} M parameters), trained together.

Plan with it: `plan-goal --goal goal.png world_model=lewm` (or `world_model.path={out}`); in Python
`LeWMWorldModel.from_safetensors("{out}")` (worldmodel/lewm/model.py).

## Data

`{data.get('data')}`, camera `{data.get('camera')}`: {data.get('train_episodes')} training episodes
({data.get('train_frames')} frames); {data.get('held_out_episodes')} episodes held out (seeded split,
val_fraction {cfg.get('val_fraction')}, seed {cfg.get('seed')}).

## Recipe

```
{command}
```

Composed config (`configs/train_lewm.yaml`):

```json
{json.dumps({k: cfg.get(k) for k in ('img_size', 'model', 'train')}, indent=1)}
```

## Training

- {last.get('step', '?')} steps, wall time {log_wall_time(run_dir / 'log.jsonl') / 60:.1f} min of training
  ({last.get('clips_per_s', '?')} clips/s in the last segment; threads={cfg.get('threads')}).
- loss (prediction MSE + {cfg.get('train', {}).get('sigreg_weight')} x SIGReg): first {first.get('loss')}, last {last.get('loss')};
  prediction MSE first {first.get('pred_loss')}, last {last.get('pred_loss')}; SIGReg first {first.get('sigreg')}, last {last.get('sigreg')};
  latent-path curvature (weight {cfg.get('train', {}).get('straightness_weight', 0.0)}) first {first.get('curvature')}, last {last.get('curvature')}.
- batch embeddings at the end: mean per-dimension std {last.get('std_mean')}, effective rank {last.get('effective_rank')}
  of {arch['embed_dim']}.
- loss log: `{run_dir / 'log.jsonl'}`; resume state: `{run_dir / 'state.pt'}`.

## Held-out validation

Next-embedding MSE {val.get('model')} against {val.get('copy_last')} for copying the last embedding (ratio
{val.get('ratio_model_to_copy')}) over {val.get('clips')} clips; embeddings in eval mode: mean std {val.get('std_mean')},
effective rank {val.get('effective_rank')}; latent-path curvature {val.get('curvature')}.

## Integrity

The file's metadata records `content_sha256` = `{meta['content_sha256']}`: sha256 over every tensor's name,
dtype, shape and bytes (`worldmodel.checkpoints.tensors_sha256`). Loading recomputes it and refuses a file
that differs.
"""
    return write_card(out.with_suffix(".md"), card)


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
        summary["model_card"] = str(write_model_card(cfg.out, cfg.run_dir, "train-lewm " + shlex.join(args)))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
