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
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.configs import resolve_path
from vjepa_planning.worldmodel.model_card import write_card


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


def _fmt_validation(v: dict) -> str:
    lines = ["| held-out L1 (layer-normed features) | model | copy last frame | model / copy |", "|---|---|---|---|"]
    names = {"teacher_forcing": "teacher-forced, next frame", "rollout_step1": "rollout, step 1",
             "rollout_step2": "rollout, step 2", "rollout_2step_mean": "rollout, mean of steps 1-2"}
    for key, label in names.items():
        if key in v:
            g = v[key]
            lines.append(f"| {label} | {g['model']:.4f} | {g['copy_last']:.4f} | {g['ratio_model_to_copy']:.3f} |")
    return "\n".join(lines)


def write_model_card(cfg: DictConfig, command: str) -> Path:
    """``<out>.md`` beside the predictor: data, recipe, wall time, validation vs the copy-last baseline."""
    from vjepa_planning.worldmodel import checkpoints

    out, run_dir = Path(cfg.out), Path(cfg.run_dir)
    sd, meta = checkpoints.read_safetensors(out)
    extra, arch = meta["extra"], meta["arch"]
    rows = [json.loads(ln) for ln in (run_dir / "log.jsonl").read_text().splitlines() if ln.strip()]
    final = json.loads((run_dir / "final_rank0.json").read_text())
    n_params = sum(v.numel() for v in sd.values())
    v = extra.get("validation", {})
    last = rows[-10:]
    mean = lambda k: sum(r[k] for r in last if k in r) / max(1, sum(k in r for r in last))
    card = f"""# {out.stem}: action-conditioned predictor (V-JEPA 2-AC style) for the sim Franka scenes

`{out.name}` ({out.stat().st_size / 2**20:.1f} MB, {n_params / 1e6:.2f} M parameters, float32, format
`{meta['format']}` kind `{meta['kind']}`): width {arch['predictor_embed_dim']}, {arch['depth']} blocks,
{arch['num_heads']} heads, MLP ratio {arch['mlp_ratio']}, on the {arch['grid_size'][0]} x {arch['grid_size'][1]}
grid of the {arch['embed_dim']}-d frozen encoder `{extra.get('encoder')}`
(weights sha256 `{str(extra.get('encoder_weights_sha256'))[:16]}...`). Tokens per step: action, state, {arch['grid_size'][0] * arch['grid_size'][1]} patches;
block-causal attention.

Load the pair for planning:

```python
from vjepa_planning.worldmodel.world_model import VJEPAWorldModel
wm = VJEPAWorldModel.from_safetensors("{extra.get('encoder')}", "{out}", device="cpu")
z = wm.encode(frame_uint8_hw3)                 # [1, {arch['grid_size'][0] * arch['grid_size'][1]}, {arch['embed_dim']}], layer-normed
z_hat = wm.rollout(z, state_1x7, actions_bxhx7)  # [B, H, {arch['grid_size'][0] * arch['grid_size'][1]}, {arch['embed_dim']}]
```

## Data

`{extra.get('data')}`, camera `{extra.get('camera')}`: {final['train_episodes']} training episodes
({final['train_windows']} clip windows of {cfg.train.num_frames} frames at the dataset's 4 fps; shorter
episodes padded and masked), {final['val_episodes']} held-out episodes (seeded hash split, the same
episodes pretrain-encoder held out). Frozen-encoder features cached in `{final['feature_cache']}`.

## Recipe

```
{command}
```

```json
{json.dumps({"predictor": OmegaConf.to_container(cfg.predictor), "train": OmegaConf.to_container(cfg.train),
             "seed": cfg.seed, "threads": cfg.threads}, indent=1)}
```

Loss: teacher forcing (frames 0..T-2 -> 1..T-1, one block-causal pass) + {cfg.train.rollout_steps}-step rollout
(own predictions fed back), L1 on layer-normed features;{f" initialised from `{extra['init_from']}`;" if extra.get('init_from') else ""} AdamW (weight decay {cfg.train.weight_decay} on
matrices), warmup-stable-decay LR (peak {cfg.train.lr}), gradient clipping {cfg.train.grad_clip}.

## Training

- {rows[-1]['step'] if rows else '?'} steps x batch {cfg.train.batch_size}; wall time {extra.get('train_time_s', 0) / 60:.1f} min of
  training steps ({rows[-1].get('clips_per_s') if rows else '?'} clips/s in the last segment), plus the one-off feature-cache fill.
- final training loss (mean of the last 10 logged steps): teacher forcing {mean('tf_loss'):.4f},
  rollout {mean('rollout_loss'):.4f}.
- logs: `{run_dir / 'log.jsonl'}`, metrics: `{run_dir / 'metrics.json'}`.

## Validation (held-out episodes, {v.get('clips', '?')} clips)

{_fmt_validation(v)}

"copy last frame" predicts that nothing changes (z_(t+1) = z_t; for the rollout, every step = frame 0).
"""
    return write_card(out.with_suffix(".md"), card)


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
            summary["model_card"] = str(write_model_card(cfg, "post-train " + shlex.join(args)))
        print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
