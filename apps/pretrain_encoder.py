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
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.worldmodel.model_card import log_wall_time, write_card


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


def write_model_card(out: str | Path, run_dir: str | Path, command: str) -> Path:
    """``<out>.md`` beside the encoder: data, recipe (config + command), wall time, final loss.
    benchmarks/linear_probe.py --card adds the probe section."""
    from vjepa_planning.worldmodel import checkpoints

    out, run_dir = Path(out), Path(run_dir)
    sd, meta = checkpoints.read_safetensors(out)
    extra, arch = meta["extra"], meta["arch"]
    data = extra.get("data", {})
    cfg = data.get("config", {})
    rows = [json.loads(ln) for ln in (run_dir / "log.jsonl").read_text().splitlines() if ln.strip()]
    n_params = sum(v.numel() for v in sd.values())
    grid = arch["img_size"] // arch["patch_size"]
    wall = log_wall_time(run_dir / "log.jsonl")
    first = [r["loss"] for r in rows[:5]]
    card = f"""# {out.stem}: V-JEPA-pretrained ViT encoder for the sim Franka scenes

`{out.name}` ({out.stat().st_size / 2**20:.1f} MB, {n_params / 1e6:.2f} M parameters stored as
{str(next(iter(sd.values())).dtype).removeprefix('torch.')} (cast to your compute dtype on load), format
`{meta['format']}` kind `{meta['kind']}`): {'the encoder' if cfg.get('train', {}).get('target') == 'sigreg' else 'the EMA (target) encoder'} after {extra.get('steps')} steps of
{extra.get('objective')}. `{arch['embed_dim']}`-d, {arch['depth']} blocks, {arch['num_heads']} heads,
{arch['img_size']} px input, {arch['patch_size']} px patches, tubelet {arch['tubelet_size']}: a
{grid} x {grid} grid = {grid * grid} tokens per frame (a still frame is repeated to fill one tubelet).

Load it:

```python
from vjepa_planning.worldmodel import checkpoints
encoder = checkpoints.load_module("{out}", kind="encoder")
# for planning, with a predictor post-trained on its features (post-train encoder_path={out}):
from vjepa_planning.worldmodel.world_model import VJEPAWorldModel
wm = VJEPAWorldModel.from_safetensors("{out}", "path/to/that_predictor.safetensors")
```

Preprocessing at use: centre square crop, antialiased bilinear resize to {arch['img_size']} px, ImageNet
mean / std (what `VJEPAFrameEncoder` does by default).

## Data

`{data.get('data')}`, camera `{data.get('camera')}`: {data.get('train_episodes')} training episodes
({data.get('train_frames')} frames); {data.get('held_out_episodes')} episodes held out (seeded hash split,
val_fraction {cfg.get('val_fraction')}, seed {cfg.get('seed')}; the same split post-train and the probes hold out).

## Recipe

```
{command}
```

Composed config (`configs/pretrain_encoder.yaml` + `encoder/{'sim_mini'}` + `train/pretrain_sim`):

```json
{json.dumps({k: cfg.get(k) for k in ('encoder', 'mask_predictor', 'train')}, indent=1)}
```

## Training

- steps {rows[-1]['step'] if rows else '?'} x batch {cfg.get('train', {}).get('batch_size')} clips of
  {cfg.get('train', {}).get('num_frames')} frames; wall time {wall / 60:.1f} min of training
  ({rows[-1].get('clips_per_s') if rows else '?'} clips/s in the last segment; threads={cfg.get('threads')}).
- loss (L1 to layer-normed EMA targets, mean of the 2 mask groups): first {np_mean(first):.4f},
  final {extra.get('final_loss'):.4f} (mean of the last 10 logged steps).
- target spread (std over tokens, mean over channels; 0 = collapse): first {rows[0].get('target_spread') if rows else '?'},
  final {rows[-1].get('target_spread') if rows else '?'}.
- loss log: `{run_dir / 'log.jsonl'}`; resume state: `{run_dir / 'state.pt'}`.
"""
    return write_card(out.with_suffix(".md"), card)


def np_mean(x) -> float:
    return float(sum(x) / len(x)) if x else float("nan")


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
        summary["model_card"] = str(write_model_card(cfg.out, cfg.run_dir, "pretrain-encoder " + shlex.join(args)))
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
