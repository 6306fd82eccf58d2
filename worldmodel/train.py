"""Post-training of the action-conditioned predictor on frozen-encoder features (V-JEPA 2-AC).

Loss (per clip of T frames, features z layer-normed, predictions layer-normed before the loss):
  * teacher forcing: frames 0..T-2 (with their actions and states) -> frames 1..T-1 in one
    block-causal forward pass; L1 to the real next-frame features.
  * rollout: from frame 0 alone, predict frame 1, feed the prediction back (with the recorded
    states and actions) to predict frame 2, ... for ``rollout_steps`` steps; L1 to the real frames.
  total = teacher-forcing + rollout. AdamW (weight decay on matrices only), warmup-stable-decay
  learning rate, gradient clipping, bf16 autocast on CUDA.

Robustness: ``run_dir/state.pt`` holds model, optimiser, step, data-sampler position and RNG states;
it is written atomically every ``checkpoint_every`` steps and on exit (SIGTERM / SIGINT included), and
a new run with the same ``run_dir`` resumes from it (a SIGKILLed run loses only the steps since the
last checkpoint, which it then redoes identically). DDP: launched with torchrun the ranks split each
global batch, gradients are all-reduced (gloo on CPU, nccl on CUDA) and rank 0 writes the files.

Read top to bottom: schedules, losses, validation, state / files, then ``post_train`` (the loop).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.data.clips import (
    ClipBatch,
    ClipSampler,
    EpisodeArrays,
    check_dataset,
    clip_windows,
    collate,
    load_episodes,
    split_episodes,
    usable_episodes,
)
from vjepa_planning.worldmodel.data.feature_cache import build_feature_cache, default_frame_encoder
from vjepa_planning.worldmodel.predictor import ACPredictor
from vjepa_planning.worldmodel.pretrain import param_groups
from vjepa_planning.worldmodel.run_state import StopFlag, atomic_torch_save, atomic_write_text, check_same_recipe, truncate_log
from vjepa_planning.worldmodel.train_config import TrainConfig

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- config


def wsd_lr(step: int, cfg: TrainConfig) -> float:
    """Warmup (linear start_lr -> lr), stable (lr), decay (linear lr -> final_lr over the last part)."""
    if step < cfg.warmup_steps:
        return cfg.start_lr + (cfg.lr - cfg.start_lr) * step / max(1, cfg.warmup_steps)
    decay_steps = round(cfg.decay_fraction * cfg.steps)
    decay_start = cfg.steps - decay_steps
    if step < decay_start or decay_steps == 0:
        return cfg.lr
    t = min(1.0, (step - decay_start) / decay_steps)
    return cfg.lr + (cfg.final_lr - cfg.lr) * t


# ----------------------------------------------------------------------------- losses


def _ln(z: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(z.float(), (z.shape[-1],))


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over the valid frames: pred, target [B, T, N, D], valid [B, T]."""
    per_frame = (pred.float() - target.float()).abs().mean(dim=(-1, -2))  # [B, T]
    w = valid.float()
    return (per_frame * w).sum() / w.sum().clamp(min=1.0)


def teacher_forcing(predictor, b: ClipBatch) -> torch.Tensor:
    """LN(predictor(frames 0..T-2)) vs frames 1..T-1: [B, T-1, N, D] predictions."""
    return _ln(predictor(b.features[:, :-1], b.actions[:, :-1], b.states[:, :-1]))


def rollout(predictor, b: ClipBatch, steps: int) -> torch.Tensor:
    """Autoregressive predictions of frames 1..steps from frame 0 ([B, steps, N, D]), each fed back
    (layer-normed) with the recorded states and actions, as in the V-JEPA 2-AC training loop."""
    z = b.features[:, :1]  # [B, 1, N, D]
    for n in range(1, steps + 1):
        nxt = _ln(predictor(z, b.actions[:, :n], b.states[:, :n])[:, -1:])  # [B, 1, N, D]
        z = torch.cat([z, nxt.to(z.dtype)], dim=1)  # [B, n + 1, N, D]
    return z[:, 1:]


def ac_loss(predictor, b: ClipBatch, rollout_steps: int) -> tuple[torch.Tensor, dict]:
    tf = masked_l1(teacher_forcing(predictor, b), b.features[:, 1:], b.valid[:, 1:])
    total, info = tf, {"tf_loss": tf.item()}
    if rollout_steps:
        r = min(rollout_steps, b.features.shape[1] - 1)
        ro = masked_l1(rollout(predictor, b, r), b.features[:, 1 : r + 1], b.valid[:, 1 : r + 1])
        total, info["rollout_loss"] = total + ro, ro.item()
    return total, info


# ----------------------------------------------------------------------------- validation


@torch.no_grad()
def validate(predictor, episodes: list[EpisodeArrays], cfg: TrainConfig, device, batch_size: int = 64) -> dict:
    """Held-out L1 of the model vs the copy-the-last-frame baseline: teacher-forced (every transition
    of every clip) and rollout (step 1 and step ``rollout_steps`` from each clip's first frame)."""
    predictor.eval()
    windows = clip_windows(episodes, cfg.num_frames, stride=max(1, cfg.num_frames // 2))
    if len(windows) > cfg.val_max_clips:
        windows = windows[np.random.default_rng(cfg.seed).choice(len(windows), cfg.val_max_clips, replace=False)]
    R = cfg.rollout_steps
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}

    def add(name, pred, target, valid):
        per = (pred.float() - target.float()).abs().mean(dim=(-1, -2))  # [B, T]
        sums[name] = sums.get(name, 0.0) + float((per * valid).sum())
        counts[name] = counts.get(name, 0.0) + float(valid.sum())

    for i in range(0, len(windows), batch_size):
        b = collate(episodes, windows[i : i + batch_size], cfg.num_frames).to(device)
        with _autocast(device):
            tf = teacher_forcing(predictor, b)
        v = b.valid[:, 1:].float()
        add("teacher_forcing/model", tf, b.features[:, 1:], v)
        add("teacher_forcing/copy_last", b.features[:, :-1], b.features[:, 1:], v)
        if R:
            with _autocast(device):
                ro = rollout(predictor, b, R)  # [B, R, N, D]
            first = b.features[:, :1].expand(-1, R, -1, -1)
            for n in sorted({1, R}):
                vn = b.valid[:, n : n + 1].float()
                add(f"rollout_step{n}/model", ro[:, n - 1 : n], b.features[:, n : n + 1], vn)
                add(f"rollout_step{n}/copy_last", first[:, n - 1 : n], b.features[:, n : n + 1], vn)
            vr = b.valid[:, 1 : R + 1].float()
            add(f"rollout_{R}step_mean/model", ro, b.features[:, 1 : R + 1], vr)
            add(f"rollout_{R}step_mean/copy_last", first, b.features[:, 1 : R + 1], vr)
    predictor.train()
    out: dict = {"episodes": len(episodes), "clips": len(windows)}
    for name, total in sums.items():
        group, who = name.split("/")
        out.setdefault(group, {})[who] = round(total / max(counts[name], 1.0), 5)
    for group in list(out):
        if isinstance(out[group], dict) and "copy_last" in out[group]:
            out[group]["ratio_model_to_copy"] = round(out[group]["model"] / max(out[group]["copy_last"], 1e-12), 4)
    return out


# ----------------------------------------------------------------------------- helpers


def _autocast(device):
    device = torch.device(device)
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def build_predictor(predictor_cfg: dict, embed_dim: int, grid_size: int, seed: int) -> ACPredictor:
    """ACPredictor with explicit sizes (``predictor_cfg``: predictor_embed_dim, depth, num_heads,
    mlp_ratio, optional action_dim / extrinsics_encoder), initialised from ``seed``. Without camera
    extrinsics the (official-layout) ``extrinsics_encoder`` would be dead weights, so it is left out."""
    torch.manual_seed(seed)
    return ACPredictor(
        embed_dim=embed_dim, predictor_embed_dim=int(predictor_cfg["predictor_embed_dim"]),
        depth=int(predictor_cfg["depth"]), num_heads=int(predictor_cfg["num_heads"]),
        mlp_ratio=float(predictor_cfg.get("mlp_ratio", 4.0)), grid_size=grid_size,
        action_dim=int(predictor_cfg.get("action_dim", 7)),
        extrinsics_encoder=bool(predictor_cfg.get("extrinsics_encoder", False)),  # unused weights otherwise
    )


def load_initial_weights(predictor: ACPredictor, path, encoder_sha256: str, encoder_path) -> str:
    """Copy ``path``'s weights into ``predictor`` (strict: every differing key or shape is named) after
    checking it was post-trained on the same encoder's features; returns the loaded weights' hash."""
    init = checkpoints.load_module(path, kind="predictor")
    trained_on = checkpoints.read_metadata(path)["extra"].get("encoder_weights_sha256")
    if trained_on is not None and trained_on != encoder_sha256:
        raise ValueError(f"init_from {path} was post-trained on another encoder than {encoder_path}; "
                         f"start from a predictor trained on its features, or from scratch (init_from=null)")
    try:
        checkpoints.load_strict(predictor, init.state_dict())
    except checkpoints.CheckpointMismatchError as e:
        differ = e.missing + e.unexpected + e.shapes
        raise ValueError(f"init_from {path} does not fit the configured predictor (predictor=...): {', '.join(differ[:8])}"
                         + (f" and {len(differ) - 8} more" if len(differ) > 8 else "")) from None
    return checkpoints.module_sha256(predictor)


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def init_distributed(device: torch.device) -> Dist:
    """torchrun sets WORLD_SIZE / RANK: join the process group (gloo on CPU, nccl on CUDA), left again at exit
    (a process that exits with the group alive can abort in gloo's threads: "terminate called without an
    active exception", a failed run after a finished one)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return Dist(dist.get_rank(), dist.get_world_size())


def resolve_device(name: str | None) -> torch.device:
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ----------------------------------------------------------------------------- the loop


def post_train(
    data: str | os.PathLike,
    encoder_path: str | os.PathLike,
    predictor_cfg: dict,
    cfg: TrainConfig,
    *,
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    camera: str = "exterior",
    device: str | torch.device | None = None,
    threads: int | None = None,
    max_steps_this_call: int | None = None,
    progress: bool = True,
    init_from: str | os.PathLike | None = None,
) -> dict:
    """Train (or resume) to ``cfg.steps``; when complete, validate and write ``out`` (predictor
    safetensors) and ``run_dir/metrics.json``. Returns a summary dict (also on early stop).
    ``init_from``: start from this predictor's weights (post-training a shipped model on new logs) instead of
    a random initialisation; it must have the configured shape and be trained on ``encoder_path``'s features."""
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _post_train(data, encoder_path, predictor_cfg, cfg, run_dir=run_dir, out=out, camera=camera,
                           device=device, threads=threads, max_steps_this_call=max_steps_this_call, progress=progress,
                           init_from=init_from)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


# Settings that only change bookkeeping, not the optimisation: a resumed run may change them.
RESUME_FREE = frozenset({"checkpoint_every", "log_every", "step_delay_s", "val_max_clips", "deterministic"})


def _post_train(data, encoder_path, predictor_cfg: dict, cfg: TrainConfig, *, run_dir, out, camera, device, threads,
                max_steps_this_call, progress, init_from=None) -> dict:
    from tqdm import tqdm

    from vjepa_planning.worldmodel.data.lerobot import DatasetError, LeRobotDataset

    device = resolve_device(device)
    if threads:
        torch.set_num_threads(int(threads))
    dd = init_distributed(device)
    if device.type == "cuda" and dd.world_size > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", dd.rank)))
        torch.cuda.set_device(device)
    run_dir = Path(run_dir)
    if dd.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    dd.barrier()

    # -- data: episodes, split, frozen-encoder features (cached beside the data) --------------
    dataset = LeRobotDataset(data, on_error="skip")
    check_dataset(dataset, camera)
    episodes = usable_episodes(dataset, cfg.min_episode_length)
    train_eps, val_eps = split_episodes(dataset.episode_indices, cfg.val_fraction, cfg.seed)  # split first: the
    usable = set(episodes)  # held-out set is the same for pretraining, post-training and the probes
    train_eps, val_eps = [e for e in train_eps if e in usable], [e for e in val_eps if e in usable]
    if not train_eps:
        raise DatasetError(dataset.root, f"no training episode of at least {cfg.min_episode_length} frames is left "
                                         f"after holding out {len(val_eps)} for validation")
    encoder = checkpoints.load_module(encoder_path, kind="encoder")
    frame_encoder = default_frame_encoder(encoder, device=device)
    cache = build_feature_cache(dataset, frame_encoder, camera, episodes, rank=dd.rank, world_size=dd.world_size,
                                progress=progress)
    dd.barrier()
    train_data = load_episodes(dataset, cache, train_eps)
    val_data = load_episodes(dataset, cache, val_eps)
    windows = clip_windows(train_data, cfg.num_frames, cfg.clip_stride)
    short = int((windows[:, 2] < cfg.num_frames).sum())
    if dd.main:
        log.info("train: %d episodes, %d clip windows (%d shorter than %d frames, padded); val: %d episodes",
                 len(train_data), len(windows), short, cfg.num_frames, len(val_data))

    # -- model, optimiser, sampler; resume -------------------------------------------------------
    grid = encoder.img_size // encoder.patch_size
    predictor = build_predictor(predictor_cfg, encoder.embed_dim, grid, cfg.seed)
    if init_from is not None:
        init_sha = load_initial_weights(predictor, init_from, cache.spec["encoder_weights_sha256"], encoder_path)
    predictor = predictor.to(device).train()
    model = predictor
    if dd.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            predictor, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(param_groups([predictor], cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    sampler = ClipSampler(len(windows), cfg.batch_size, cfg.seed, dd.rank, dd.world_size)
    step, train_time = 0, 0.0
    state_path, log_path = run_dir / "state.pt", run_dir / "log.jsonl"
    recipe = {"train": asdict(cfg), "predictor": dict(predictor_cfg)}
    if init_from is not None:  # only then, so runs started before init_from existed still resume
        recipe["init_from"] = {"path": str(init_from), "weights_sha256": init_sha}
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        if "recipe" not in state and "train_cfg" in state:  # states written before the recipe key
            state["recipe"] = {"train": state["train_cfg"], "predictor": state["predictor_cfg"]}
        check_same_recipe(state_path, state, recipe, RESUME_FREE)
        predictor.load_state_dict(state["predictor"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.load_state_dict(state["sampler"])
        step = int(state["step"])
        train_time = float(state.get("train_time_s", 0.0))
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        if dd.main:
            log.info("resumed from %s at step %d", state_path, step)
    if dd.main:
        truncate_log(log_path, step)
    dd.barrier()

    def save_state():
        if dd.main:
            atomic_torch_save({
                "predictor": predictor.state_dict(), "optimizer": optimizer.state_dict(),
                "sampler": sampler.state_dict(), "step": step, "train_time_s": train_time,
                "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(), "python_rng": random.getstate(),
                "recipe": recipe,
            }, state_path)

    params = [p for g in optimizer.param_groups for p in g["params"]]
    stop_at = cfg.steps if max_steps_this_call is None else min(cfg.steps, step + max_steps_this_call)
    t0, done = time.time(), 0
    bar = tqdm(total=cfg.steps, initial=step, desc="post-train", unit="step", disable=not (progress and dd.main),
               mininterval=5.0)
    logf = open(log_path, "a") if dd.main else None
    with StopFlag() as stop:
        try:
            while step < stop_at and not stop.set:
                t_step = time.time()
                lr = wsd_lr(step, cfg)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                batch = collate(train_data, windows[sampler.next_indices()], cfg.num_frames).to(device)
                with _autocast(device):
                    loss, info = ac_loss(model, batch, cfg.rollout_steps)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip) if cfg.grad_clip else torch.tensor(0.)
                optimizer.step()
                step += 1
                done += 1
                train_time += time.time() - t_step
                bar.update(1)
                if logf and (step % cfg.log_every == 0 or step == stop_at):
                    el = time.time() - t0
                    row = {"step": step, "loss": round(loss.item(), 6), **{k: round(v, 6) for k, v in info.items()},
                           "lr": lr, "grad_norm": round(float(grad_norm), 4),
                           "clips_per_s": round(done * cfg.batch_size * dd.world_size / max(el, 1e-9), 2),
                           "elapsed_s": round(el, 1)}
                    logf.write(json.dumps(row) + "\n")
                    logf.flush()
                    bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.1e}")
                if step % cfg.checkpoint_every == 0:
                    save_state()
                if cfg.step_delay_s:
                    time.sleep(cfg.step_delay_s)
        finally:
            bar.close()
            save_state()
            if logf:
                logf.close()
    elapsed = time.time() - t0
    summary = {"step": step, "steps": cfg.steps, "complete": step >= cfg.steps, "rank": dd.rank,
               "world_size": dd.world_size, "elapsed_s": round(elapsed, 1), "train_time_s": round(train_time, 1),
               "clips_per_s": round(done * cfg.batch_size * dd.world_size / max(elapsed, 1e-9), 2),
               "weights_sha256": checkpoints.module_sha256(predictor), "feature_cache": str(cache.dir),
               "train_episodes": len(train_data), "val_episodes": len(val_data), "train_windows": len(windows)}
    atomic_write_text(run_dir / f"final_rank{dd.rank}.json", json.dumps(summary, indent=1))
    if summary["complete"] and dd.main:
        metrics = validate(predictor, val_data, cfg, device) if val_data else {}
        summary["validation"] = metrics
        atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=1))
        if out is not None:
            out = Path(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
            pred_cpu = predictor.float().cpu()
            checkpoints.save_module(pred_cpu, tmp, extra={
                "trained_by": "post-train", "encoder": str(encoder_path), "feature_cache_key": cache.key,
                "encoder_weights_sha256": cache.spec["encoder_weights_sha256"], "camera": camera,
                "data": str(data), "steps": cfg.steps, "train_time_s": round(train_time, 1), "validation": metrics,
                **({"init_from": str(init_from)} if init_from is not None else {}),
            })
            os.replace(tmp, out)
            summary["out"] = str(out)
    dd.barrier()
    return summary
