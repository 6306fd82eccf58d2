"""Model cards beside shipped weights, one writer per trainer (post-train, pretrain-encoder, train-lewm),
written from the run's files and the weights' metadata; hand-written sections survive a rewrite."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Sections a person writes (how the data was made) that no training run knows; kept when a card is rewritten.
KEPT_SECTIONS = ("Provenance of the data",)


def write_card(path: Path, card: str, before: str = "## Recipe") -> Path:
    """Write `card` to `path`, carrying over the KEPT_SECTIONS of the card already there (inserted
    before the `before` heading), so retraining does not erase what only a person could say."""
    kept = []
    if path.exists():
        old = path.read_text()
        for name in KEPT_SECTIONS:
            match = re.search(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", old, flags=re.S | re.M)
            if match and f"## {name}\n" not in card:
                kept.append(match.group(0).rstrip() + "\n\n")
    if kept and before in card:
        head, tail = card.split(before, 1)
        card = head + "".join(kept) + before + tail
    path.write_text(card)
    return path


def log_wall_time(log_path: Path) -> float:
    """Seconds of training in a run's log.jsonl, summed over resumed segments (elapsed_s restarts)."""
    total, last = 0.0, 0.0
    for ln in Path(log_path).read_text().splitlines():
        e = json.loads(ln).get("elapsed_s", 0.0)
        if e < last:
            total += last
        last = e
    return total + last


# ----------------------------------------------------------------------------- the trainers' cards


def _fmt_validation(v: dict) -> str:
    lines = ["| held-out L1 (layer-normed features) | model | copy last frame | model / copy |", "|---|---|---|---|"]
    names = {"teacher_forcing": "teacher-forced, next frame", "rollout_step1": "rollout, step 1",
             "rollout_step2": "rollout, step 2", "rollout_2step_mean": "rollout, mean of steps 1-2"}
    for key, label in names.items():
        if key in v:
            g = v[key]
            lines.append(f"| {label} | {g['model']:.4f} | {g['copy_last']:.4f} | {g['ratio_model_to_copy']:.3f} |")
    return "\n".join(lines)


def predictor_card(cfg: Mapping[str, Any], command: str) -> Path:
    """``<out>.md`` beside the predictor (`cfg`: post-train's config as plain containers): data, recipe, wall time, validation vs the copy-last baseline."""
    from vjepa_planning.worldmodel import checkpoints

    out, run_dir = Path(cfg["out"]), Path(cfg["run_dir"])
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
({final['train_windows']} clip windows of {cfg["train"]["num_frames"]} frames at the dataset's 4 fps; shorter
episodes padded and masked), {final['val_episodes']} held-out episodes (seeded hash split, the same
episodes pretrain-encoder held out). Frozen-encoder features cached in `{final['feature_cache']}`.

## Recipe

```
{command}
```

```json
{json.dumps({"predictor": cfg["predictor"], "train": cfg["train"],
             "seed": cfg["seed"], "threads": cfg["threads"]}, indent=1)}
```

Loss: teacher forcing (frames 0..T-2 -> 1..T-1, one block-causal pass) + {cfg["train"]["rollout_steps"]}-step rollout
(own predictions fed back), L1 on layer-normed features;{f" initialised from `{extra['init_from']}`;" if extra.get('init_from') else ""} AdamW (weight decay {cfg["train"]["weight_decay"]} on
matrices), warmup-stable-decay LR (peak {cfg["train"]["lr"]}), gradient clipping {cfg["train"]["grad_clip"]}.

## Training

- {rows[-1]['step'] if rows else '?'} steps x batch {cfg["train"]["batch_size"]}; wall time {extra.get('train_time_s', 0) / 60:.1f} min of
  training steps ({rows[-1].get('clips_per_s') if rows else '?'} clips/s in the last segment), plus the one-off feature-cache fill.
- final training loss (mean of the last 10 logged steps): teacher forcing {mean('tf_loss'):.4f},
  rollout {mean('rollout_loss'):.4f}.
- logs: `{run_dir / 'log.jsonl'}`, metrics: `{run_dir / 'metrics.json'}`.

## Validation (held-out episodes, {v.get('clips', '?')} clips)

{_fmt_validation(v)}

"copy last frame" predicts that nothing changes (z_(t+1) = z_t; for the rollout, every step = frame 0).
"""
    return write_card(out.with_suffix(".md"), card)


def encoder_card(out: str | Path, run_dir: str | Path, command: str) -> Path:
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


def lewm_card(out: str | Path, run_dir: str | Path, command: str) -> Path:
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


def readout_card(cfg: Mapping[str, Any], command: str) -> Path:
    """``<out>.md`` beside a gripper readout (`cfg`: fit-readout's config as plain containers)."""
    from vjepa_planning.worldmodel import checkpoints

    out = Path(cfg["out"])
    meta = checkpoints.read_metadata(out)
    extra, arch = meta["extra"], meta["arch"]
    val = extra.get("val_accuracy")
    card = f"""# {out.stem}: gripper readout (is the hand closed?) from the camera frame

`{out.name}` ({out.stat().st_size / 2**10:.0f} KB, format `{meta['format']}` kind `{meta['kind']}`): a CNN of
{len(arch['widths'])} strided 3 x 3 convolutions (widths {arch['widths']}, batch norm, GELU), a max over the last map and
a linear head, on the `{extra.get('camera')}` camera's frame centre-cropped and resized to {arch['img_size']} px. It
gives the probability that the hand is closed (measured gripper above {extra.get('closed_above')}: a hand pinching
the cube measures about 0.47). The planner reads each goal image with it and adds
`planner.gripper_goal_weight` x |imagined gripper - the goal's| to every candidate's energy.

Load it with the pair: `world_model.readout=shipped:{out.name}` (the default), or
`VJEPAWorldModel.from_safetensors(encoder, predictor, readout_path="{out}")`.

## Data

`{extra.get('data')}`, camera `{extra.get('camera')}`: {extra.get('frames')} training frames (one in
{extra.get('frame_step')} of the training episodes' frames; {extra.get('closed_share', 0):.0%} of them closed) and
all {extra.get('val_frames')} frames of the {extra.get('val_episodes')} held-out episodes (post-train's seeded
split, fraction {cfg.get('val_fraction')}).

## Recipe

```
{command}
```

AdamW (lr {extra.get('lr')}, one-cycle schedule, weight decay {extra.get('weight_decay')}), binary cross-entropy,
{extra.get('epochs')} epochs of batches of {extra.get('batch_size')}, seed {extra.get('seed')}.

## Accuracy

Held-out frames {'n/a' if val is None else f'{val:.4f}'} (threshold 0.5); training batches of the last epoch
{extra.get('train_accuracy', 0):.4f}.

## Integrity

The file's metadata records `content_sha256` = `{meta['content_sha256']}`; loading recomputes it and refuses a
file that differs.
"""
    return write_card(out.with_suffix(".md"), card)
