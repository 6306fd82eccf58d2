"""Training throughput on this machine.

    python benchmarks/train_throughput.py [--threads 1] [--device cpu] [--repeats 5] [--skip-large]

Prints
  (1) encoder frames/s, inference on single frames (one tubelet each, as when planning and when
      filling the feature cache): the embedded sim_mini size (vit_mini, 96 px, 6 x 6 tokens) and,
      for scale, vit_tiny at 256 px (16 x 16 tokens);
  (2) pretrain-encoder clips/s (4-frame clips, both V-JEPA mask groups, forward + backward + EMA);
  (3) post-train clips/s (8-frame clips, teacher forcing + 2-step rollout, forward + backward) with
      the feature cache (features read from memory) and without it (the frozen encoder run on the
      clip's 8 frames every step, which is what the cache saves).
Inputs are synthetic tensors of the real sizes; model sizes come from the shipped configs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from omegaconf import OmegaConf

from vjepa_planning.configs import compose_config
from vjepa_planning.worldmodel.data.clips import ClipBatch
from vjepa_planning.worldmodel.encoder import build_encoder
from vjepa_planning.worldmodel.pretrain import ClipMemory, build_pretrainer, pretrain_config, sample_clips
from vjepa_planning.worldmodel.train import TrainConfig, ac_loss, build_predictor
from vjepa_planning.worldmodel.world_model import VJEPAFrameEncoder


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def encoder_fps(name: str, img: int, batch: int, repeats: int, device) -> float:
    torch.manual_seed(0)
    fe = VJEPAFrameEncoder(build_encoder(name, img_size=img), batch_size=batch, device=device)
    frames = torch.randint(0, 256, (batch, img, img, 3), dtype=torch.uint8)
    return batch / timed(lambda: fe.encode(frames), repeats)


def pretrain_clips_per_s(batch: int, repeats: int, device) -> float:

    cfg = compose_config("pretrain_encoder", [f"train.batch_size={batch}"])
    tr = build_pretrainer(dict(cfg.encoder), dict(cfg.mask_predictor), pretrain_config(OmegaConf.to_container(cfg.train, resolve=True), int(cfg.seed)), device)
    S = int(cfg.encoder.img_size)
    mem = ClipMemory(torch.randint(0, 256, (400, S, S, 3), dtype=torch.uint8), np.array([0, 200]), np.array([200, 200]))
    starts = mem.clip_starts(cfg.train.num_frames)
    step = lambda: tr.step(sample_clips(mem, starts, batch, cfg.train.num_frames, 1, 0.25, tr.generator))
    return batch / timed(step, repeats)


def post_train_clips_per_s(batch: int, repeats: int, device, cached: bool) -> float:
    cfg = compose_config("post_train")
    enc_cfg = compose_config("pretrain_encoder").encoder
    torch.manual_seed(0)
    encoder = build_encoder(enc_cfg.name, img_size=int(enc_cfg.img_size), patch_size=int(enc_cfg.patch_size))
    fe = VJEPAFrameEncoder(encoder, batch_size=batch * 8, device=device)
    grid = encoder.img_size // encoder.patch_size
    pred = build_predictor(dict(cfg.predictor), encoder.embed_dim, grid, 0).to(device)
    opt = torch.optim.AdamW(pred.parameters(), lr=1e-4, weight_decay=0.04)
    T, N, D = int(cfg.train.num_frames), grid * grid, encoder.embed_dim
    feats = torch.randn(batch, T, N, D).half()
    frames = torch.randint(0, 256, (batch, T, 128, 128, 3), dtype=torch.uint8)
    states, actions = torch.randn(batch, T, 7) * 0.1, torch.randn(batch, T, 7) * 0.01
    valid = torch.ones(batch, T, dtype=torch.bool)
    tcfg = TrainConfig()

    def step():
        z = feats.float() if cached else fe.encode(frames)  # [B, T, N, D]
        b = ClipBatch(z, states, actions, valid).to(device)
        loss, _ = ac_loss(pred, b, tcfg.rollout_steps)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return batch / timed(step, repeats)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-large", action="store_true", help="skip vit_tiny at 256 px")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    print(f"device {dev}, torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    print("encoder inference, single frames (one tubelet each):")
    print(f"  sim_mini (vit_mini, 96 px, 36 tokens):   {encoder_fps('vit_mini', 96, 64, args.repeats, dev):8.1f} frames/s")
    if not args.skip_large:
        print(f"  vit_tiny, 256 px, 256 tokens:            {encoder_fps('vit_tiny', 256, 8, args.repeats, dev):8.1f} frames/s")
    print(f"pretrain-encoder (4-frame clips, batch 32): {pretrain_clips_per_s(32, args.repeats, dev):8.1f} clips/s")
    c = post_train_clips_per_s(32, args.repeats, dev, cached=True)
    u = post_train_clips_per_s(32, max(2, args.repeats // 2), dev, cached=False)
    print(f"post-train (8-frame clips, batch 32), with feature cache:    {c:8.1f} clips/s")
    print(f"post-train (8-frame clips, batch 32), encoding every step:   {u:8.1f} clips/s  (cache speed-up x{c / u:.1f})")


if __name__ == "__main__":
    main()
