"""Linear probes: is the pretrained encoder's representation useful?

    python benchmarks/linear_probe.py --data data/sim_v1 --encoder checkpoints/encoder_sim_mini.safetensors \
        [--camera exterior] [--max-train-episodes 400] [--frame-step 2] [--json runs/linear_probe.json]

Frozen features of single frames (encoded exactly as the planner encodes them: centre crop, resize,
repeated to one tubelet, layer-normed patch tokens) -> ridge regression to the privileged
end-effector position (``observation.ee_pos``) and cube position (``observation.cube_pos``).
Fit on training episodes, scored (R^2, averaged over x, y, z) on the held-out episodes, i.e. the
same seeded split that pretrain-encoder and post-train hold out (never trained on). The ridge
strength is chosen on a validation split of the training episodes.

Rows: the pretrained encoder vs the same architecture at random init, each with mean-pooled patch
tokens (D features) and flattened patch tokens (N * D), plus a raw-pixel baseline (the frame
resized to 24 x 24 x 3) to show what a linear read-out of the image alone gives.

``--gripper`` adds a column: is the hand closed (measured gripper above the readout's threshold)? The same
ridge fit to the 0/1 label, thresholded at 0.5, as accuracy on the held-out frames; and a last row with the
shipped gripper readout (``--readout``, a CNN on the frame) on the same frames.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vjepa_planning.worldmodel import checkpoints
from vjepa_planning.worldmodel.data.clips import split_episodes
from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset
from vjepa_planning.worldmodel.encoder import VisionTransformer
from vjepa_planning.worldmodel.readout import CLOSED_ABOVE
from vjepa_planning.worldmodel.world_model import VJEPAFrameEncoder

TARGETS = ("observation.ee_pos", "observation.cube_pos")
GRIPPER = "gripper_closed"
LAMBDAS = (1e-2, 1e-1, 1.0, 10.0, 1e2, 1e3, 1e4, 1e5)


def collect(ds: LeRobotDataset, episodes, camera: str, frame_step: int):
    """(frames uint8 [M, H, W, 3], targets {name: [M, 3] or [M, 1]}, episode id [M])."""
    frames, targets, ids = [], {t: [] for t in (*TARGETS, GRIPPER)}, []
    for ep in episodes:
        e = ds.episode(ep)
        sel = np.arange(0, e.length, frame_step)
        frames.append(ds.episode_frames(ep, camera)[sel])
        for t in TARGETS:
            targets[t].append(e.extras[t][sel])
        targets[GRIPPER].append((e.states[sel, 6:7] > CLOSED_ABOVE).astype(np.float64))
        ids.append(np.full(len(sel), ep))
    return np.concatenate(frames), {t: np.concatenate(v) for t, v in targets.items()}, np.concatenate(ids)


@torch.no_grad()
def features(encoder: VisionTransformer, frames: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(mean-pooled [M, D], flattened [M, N * D]) of layer-normed patch tokens."""
    fe = VJEPAFrameEncoder(encoder, batch_size=batch)
    z = torch.cat([fe.encode(frames[i : i + batch]) for i in range(0, len(frames), batch)])  # [M, N, D]
    return z.mean(1).numpy(), z.flatten(1).numpy()


def pixels(frames: np.ndarray, side: int = 24) -> np.ndarray:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    return F.interpolate(x, size=(side, side), mode="area").flatten(1).numpy()


class Ridge:
    """Standardised ridge regression in float64, many strengths for one eigendecomposition: of the
    covariance X^T X (d x d) when there are more samples than features, else of the Gram X X^T (n x n)."""

    def __init__(self, X: np.ndarray):
        self.mu, self.sd = X.mean(0), X.std(0) + 1e-6
        self.Xs = torch.from_numpy((X - self.mu) / self.sd).double()  # [n, d]
        self.dual = self.Xs.shape[0] < self.Xs.shape[1]
        self.e, self.Q = torch.linalg.eigh(self.Xs @ self.Xs.T if self.dual else self.Xs.T @ self.Xs)

    def fit(self, Y: np.ndarray, lam: float):
        ym = Y.mean(0)
        Yc = torch.from_numpy(Y - ym).double()  # [n, k]
        if self.dual:  # coef = X^T (X X^T + lam I)^-1 Y
            coef = self.Xs.T @ (self.Q @ ((self.Q.T @ Yc) / (self.e + lam)[:, None]))
        else:  # coef = (X^T X + lam I)^-1 X^T Y
            coef = self.Q @ ((self.Q.T @ (self.Xs.T @ Yc)) / (self.e + lam)[:, None])
        return lambda Z: (torch.from_numpy((Z - self.mu) / self.sd).double() @ coef).numpy() + ym


def r2(Y: np.ndarray, P: np.ndarray) -> float:
    """Mean over output dimensions of 1 - SSE / SST."""
    sse = ((Y - P) ** 2).sum(0)
    sst = ((Y - Y.mean(0)) ** 2).sum(0)
    return float(np.mean(1 - sse / np.maximum(sst, 1e-12)))


def probe(Xtr, Ytrs: dict, ids_tr, Xte, Ytes: dict) -> dict:
    """{target: (held-out R^2, chosen lambda)}; lambda picked on a 20 % episode split of the training set."""
    uniq = np.unique(ids_tr)
    rng = np.random.default_rng(0)
    inner_val = set(rng.choice(uniq, max(1, len(uniq) // 5), replace=False).tolist())
    m = np.array([i in inner_val for i in ids_tr])
    inner, full = Ridge(Xtr[~m]), Ridge(Xtr)
    out = {}
    for t, Y in Ytrs.items():
        if t == GRIPPER:  # a linear classifier: the ridge fit to 0/1, thresholded; scored by accuracy
            acc = lambda Y, P: float(((P > 0.5) == (Y > 0.5)).mean())
            best = max(LAMBDAS, key=lambda lam: acc(Y[m], inner.fit(Y[~m], lam)(Xtr[m])))
            out[t] = (acc(Ytes[t], full.fit(Y, best)(Xte)), best)
            continue
        best = max(LAMBDAS, key=lambda lam: r2(Y[m], inner.fit(Y[~m], lam)(Xtr[m])))
        out[t] = (r2(Ytes[t], full.fit(Y, best)(Xte)), best)
    return out


def write_card_section(card: Path, results: dict, argv) -> None:
    """Replace (or append) the '## Linear probe' section of a model card."""
    import shlex

    lines = ["## Linear probe", "",
             (f"Ridge regression from frozen single-frame features to privileged positions, fit on "
              f"{results['train_frames']} frames of {results['train_episodes']} training episodes, R^2 (mean over "
              f"x, y, z) on {results['test_frames']} frames of {results['test_episodes']} held-out episodes:"), "",
             "| features | dim | end-effector position R^2 | cube position R^2 |", "|---|---|---|---|"]
    for label, r in results["r2"].items():
        lines.append(f"| {label} | {r['dim']} | {r[TARGETS[0]]:.3f} | {r[TARGETS[1]]:.3f} |")
    lines += ["", "```", "python benchmarks/linear_probe.py " + shlex.join(argv), "```", ""]
    text = card.read_text() if card.exists() else ""
    head, sep, tail = text.partition("## Linear probe")
    rest = tail.split("\n## ", 1)[1] if sep and "\n## " in tail else None
    card.write_text(head.rstrip() + "\n\n" + "\n".join(lines) + ("\n## " + rest if rest else ""))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/sim_v1")
    ap.add_argument("--encoder", default="checkpoints/encoder_sim_mini.safetensors")
    ap.add_argument("--camera", default="exterior")
    ap.add_argument("--max-train-episodes", type=int, default=400)
    ap.add_argument("--max-test-episodes", type=int, default=200)
    ap.add_argument("--frame-step", type=int, default=2, help="use every k-th frame of an episode")
    ap.add_argument("--val-fraction", type=float, default=0.1, help="held-out split (as in training)")
    ap.add_argument("--seed", type=int, default=0, help="held-out split seed (as in training)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--gripper", action="store_true", help="also score a linear read-out of 'is the hand closed?' (accuracy)")
    ap.add_argument("--readout", default="checkpoints/readout_sim_workspace.safetensors", help="with --gripper: the CNN readout to compare")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--card", default=None, help="model card (.md) whose '## Linear probe' section to write")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    ds = LeRobotDataset(args.data, on_error="skip")
    train_eps, test_eps = split_episodes(ds.episode_indices, args.val_fraction, args.seed)
    rng = np.random.default_rng(0)
    if len(train_eps) > args.max_train_episodes:
        train_eps = sorted(rng.choice(train_eps, args.max_train_episodes, replace=False).tolist())
    if len(test_eps) > args.max_test_episodes:
        test_eps = sorted(rng.choice(test_eps, args.max_test_episodes, replace=False).tolist())
    t0 = time.time()
    f_tr, y_tr, id_tr = collect(ds, train_eps, args.camera, args.frame_step)
    f_te, y_te, _ = collect(ds, test_eps, args.camera, args.frame_step)
    targets = (*TARGETS, GRIPPER) if args.gripper else TARGETS
    if not args.gripper:
        y_tr.pop(GRIPPER), y_te.pop(GRIPPER)
    print(f"probe data: {len(f_tr)} train frames ({len(train_eps)} episodes), {len(f_te)} held-out frames "
          f"({len(test_eps)} episodes), decoded in {time.time() - t0:.0f} s")

    pretrained = checkpoints.load_module(args.encoder, kind="encoder")
    _, meta = checkpoints.read_safetensors(args.encoder)
    torch.manual_seed(0)
    random_init = VisionTransformer(**meta["arch"])

    results: dict = {"data": str(args.data), "encoder": str(args.encoder), "train_frames": len(f_tr),
                     "test_frames": len(f_te), "train_episodes": len(train_eps), "test_episodes": len(test_eps),
                     "r2": {}}
    rows = []
    for name, enc in (("pretrained", pretrained), ("random_init", random_init)):
        t = time.time()
        (mtr, ftr), (mte, fte) = features(enc, f_tr), features(enc, f_te)
        fps = (len(f_tr) + len(f_te)) / (time.time() - t)
        for kind, Xtr, Xte in (("mean_pool", mtr, mte), ("flatten", ftr, fte)):
            rows.append((f"{name}/{kind}", Xtr, Xte, fps))
    rows.append(("pixels_24x24", pixels(f_tr), pixels(f_te), None))
    print(f"{'features':28s} {'dim':>6s} " + " ".join(f"{t.split('.')[-1] + ' R2':>14s}" for t in TARGETS)
          + (f" {'gripper acc':>14s}" if args.gripper else ""))
    for label, Xtr, Xte, fps in rows:
        scores = {}
        for t, (score, lam) in probe(Xtr, y_tr, id_tr, Xte, y_te).items():
            scores[t], scores[t + "/lambda"] = score, lam
        results["r2"][label] = {"dim": int(Xtr.shape[1]), **scores}
        print(f"{label:28s} {Xtr.shape[1]:6d} " + " ".join(f"{scores[t]:14.3f}" for t in targets))
    if args.gripper:
        from vjepa_planning.worldmodel.readout import accuracy

        readout = checkpoints.load_module(args.readout, kind="readout")
        acc = accuracy(readout, f_te, y_te[GRIPPER][:, 0] > 0.5)
        results["gripper_readout"] = {"path": str(args.readout), "accuracy": acc}
        print(f"{'gripper readout (CNN)':28s} {'':6s} " + " ".join(f"{'':14s}" for _ in TARGETS) + f" {acc:14.3f}")
    results["elapsed_s"] = round(time.time() - t0, 1)
    if args.card:
        write_card_section(Path(args.card), results, argv if argv is not None else sys.argv[1:])
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
