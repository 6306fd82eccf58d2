"""Measured motion against the safety limits, under a fuzz at the box edges through the sim robot server.

    python benchmarks/motion_limits.py --seeds 100 101 102 103 [--episodes 6] [--steps 60]
    python benchmarks/motion_limits.py --backend franky-sim --seeds 100 101 --episodes 2 --steps 36

Per seed, four runs: actions with each axis at +-(0.5..1.3) x max_translation, the signs random per step
("random") or pushing into one box corner for 12 steps ("corner"), each without and with rotations of up
to +-1.2 x max_rotation per Euler component; the gripper is +-1. After every step the hand is read back
through the server: its translation (per axis) and rotation (per Euler component of the delta) from where
the step started, how far it ended outside the workspace box, its tilt from pointing down and its
tracking error (where the sent step should have put it), counted against the bare limits and against
the limits plus the server's `MotionTolerance`. A step the server held (motion_limit) is counted and the
episode restarts from a fresh seed, as a client would.

`--backend franky-sim` runs the same fuzz against the franky backend on a franky-sim server (the real
libfranka protocol; franky plans the motion, so only the server's after-the-fact check guards it), in the
smaller box franky-sim's arm reaches everywhere with the hand down (FRANKY_SIM_LIMITS).
"""

from __future__ import annotations

import argparse
import logging
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.protocol import RemoteRobotError
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
from vjepa_planning.robot_drivers.safety import MotionTolerance, SafetyLimits, hand_tilt
from vjepa_planning.robot_drivers.server import RobotServer
from vjepa_planning.robot_pose import rotation_delta

MODES = ("random", "corner")
BACKENDS = ("sim", "franky-sim")
# Pushed into the corners of a Franka-sized box (x to 0.8, |y| to 0.5, z to 0.8 m), franky-sim moved the hand up
# to 0.72 m in one step and then failed to plan the reset: its box must be the reachable region.
FRANKY_SIM_LIMITS = SafetyLimits(workspace_low=(0.3, -0.25, 0.1), workspace_high=(0.6, 0.25, 0.5))
CORNER_STEPS = 12  # steps pushing into one corner before another is drawn
EXCESS_MM = (1, 3, 5)  # excess thresholds reported for translation and the box


@dataclass
class Counts:
    """What one fuzz run measured. `beyond_*`: steps past the bare limit; `beyond_*_tol`: past limit + tolerance."""

    steps: int = 0  # accepted (measured) steps
    held: int = 0  # steps the server's motion check held
    held_reasons: list[str] = field(default_factory=list)
    beyond_translation: int = 0
    beyond_rotation: int = 0
    beyond_box: int = 0
    beyond_tilt: int = 0
    beyond_translation_tol: int = 0
    beyond_rotation_tol: int = 0
    beyond_box_tol: int = 0
    beyond_tilt_tol: int = 0
    beyond_tracking_tol: int = 0
    translation_excess: dict[int, int] = field(default_factory=lambda: dict.fromkeys(EXCESS_MM, 0))  # mm -> steps
    box_excess: dict[int, int] = field(default_factory=lambda: dict.fromkeys(EXCESS_MM, 0))
    max_translation: float = 0.0  # m, largest per-axis move of a step
    max_rotation: float = 0.0  # rad, largest Euler component of a step's rotation
    max_outside: float = -np.inf  # m, furthest a step ended outside the box (negative: inside)
    max_tilt: float = 0.0  # rad
    max_tracking: float = 0.0  # m

    def add(self, other: "Counts") -> None:
        """Accumulate `other` into these counts (sums, and maxima of the maxima)."""
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(value, dict):
                for k, v in value.items():
                    mine[k] += v
            elif isinstance(value, list):
                mine.extend(value)
            elif name.startswith("max_"):
                setattr(self, name, max(mine, value))
            else:
                setattr(self, name, mine + value)


def fuzz_action(rng: np.random.Generator, limits: SafetyLimits, signs: np.ndarray, rotations: bool) -> np.ndarray:
    """One fuzz action [7]: each axis at +-(0.5..1.3) x max_translation with the given signs [3], rotations up
    to +-1.2 x max_rotation per component (or none), the gripper fully open or closed."""
    action = np.zeros(7)
    action[:3] = signs * limits.max_translation * rng.uniform(0.5, 1.3, 3)
    if rotations:
        action[3:6] = rng.uniform(-1.2, 1.2, 3) * limits.max_rotation
    action[6] = rng.choice([-1.0, 1.0])
    return action


def measure(counts: Counts, limits: SafetyLimits, tol: MotionTolerance, before: np.ndarray, sent: np.ndarray,
            after: np.ndarray) -> None:
    """Count one accepted step from state `before` [7] to `after` [7], `sent` [7] being what the server executed."""
    lo, hi = np.asarray(limits.workspace_low), np.asarray(limits.workspace_high)
    moved = float(np.abs(after[:3] - before[:3]).max())
    turned = float(np.abs(rotation_delta(before[None, 3:6], after[None, 3:6])[0]).max())
    outside = float(np.max(np.maximum(lo - after[:3], after[:3] - hi)))
    tilt = hand_tilt(after[3:6])
    tracking = float(np.abs(before[:3] + sent[:3] - after[:3]).max())
    c = counts
    c.steps += 1
    c.beyond_translation += moved > limits.max_translation + 1e-9
    c.beyond_rotation += turned > limits.max_rotation + 1e-9
    c.beyond_box += outside > 1e-9
    c.beyond_tilt += tilt > limits.max_tilt + 1e-9
    c.beyond_translation_tol += moved > limits.max_translation + tol.translation
    c.beyond_rotation_tol += turned > limits.max_rotation + tol.rotation
    c.beyond_box_tol += outside > tol.translation
    c.beyond_tilt_tol += tilt > limits.max_tilt + tol.rotation
    c.beyond_tracking_tol += tracking > tol.tracking
    for mm in EXCESS_MM:
        c.translation_excess[mm] += moved > limits.max_translation + mm / 1e3
        c.box_excess[mm] += outside > mm / 1e3
    c.max_translation, c.max_rotation = max(c.max_translation, moved), max(c.max_rotation, turned)
    c.max_outside, c.max_tilt, c.max_tracking = max(c.max_outside, outside), max(c.max_tilt, tilt), max(c.max_tracking, tracking)


def fuzz(driver: RemoteDriver, limits: SafetyLimits, tol: MotionTolerance, seed: int, mode: str, rotations: bool,
         episodes: int, steps: int, progress=None) -> Counts:
    """Run the fuzz through a connected `driver` (`episodes` x `steps` actions) and count what the hand did."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    rng, counts = np.random.default_rng(seed), Counts()
    for episode in range(episodes):
        state = driver.reset(seed=episode).state
        corner = rng.choice([-1, 1], 3)
        for k in range(steps):
            if mode == "corner" and k % CORNER_STEPS == 0:
                corner = rng.choice([-1, 1], 3)
            signs = corner if mode == "corner" else rng.choice([-1, 1], 3)
            action = fuzz_action(rng, limits, signs, rotations)
            try:
                sent = driver.act(action)
            except RemoteRobotError as e:
                if e.code != "motion_limit":
                    raise
                counts.held += 1
                counts.held_reasons.append(e.message)
                state = driver.reset(seed=1000 + 100 * episode + k).state
            else:
                after = driver.observe().state
                measure(counts, limits, tol, state, np.asarray(sent), after)
                state = after
            if progress is not None:
                progress.update(1)
    return counts


def run(seed: int, mode: str, rotations: bool, episodes: int, steps: int, image_size: int = 32,
        limits: SafetyLimits = SafetyLimits(), tol: MotionTolerance = MotionTolerance(), progress=None,
        backend=None) -> Counts:
    """One fuzz run through a fresh robot server on loopback (its own limits and motion tolerance); `backend`
    makes the server's backend (default: the MuJoCo sim)."""
    backend = backend or (lambda: SimBackend(image_size=image_size, limits=limits))
    with RobotServer(backend, port=0, watchdog_s=0, limits=limits, motion_tolerance=tol) as srv, \
            RemoteDriver("127.0.0.1", srv.port, timeout_s=30.0, reset_timeout_s=60.0) as d:
        return fuzz(d, limits, tol, seed, mode, rotations, episodes, steps, progress)


def report(label: str, c: Counts, limits: SafetyLimits, tol: MotionTolerance) -> str:
    excess = ", ".join(f">+{mm} mm: {c.translation_excess[mm]}/{c.box_excess[mm]}" for mm in EXCESS_MM)
    return (
        f"{label}: {c.steps} steps, {c.held} held\n"
        f"  beyond the bare limit:      translation {c.beyond_translation}, rotation {c.beyond_rotation}, box {c.beyond_box}, "
        f"tilt {c.beyond_tilt}\n"
        f"  beyond limit + tolerance:   translation {c.beyond_translation_tol}, rotation {c.beyond_rotation_tol}, "
        f"box {c.beyond_box_tol}, tilt {c.beyond_tilt_tol}, tracking {c.beyond_tracking_tol}  "
        f"(tolerance {1e3 * tol.translation:g} mm, {tol.rotation:g} rad, tracking {1e3 * tol.tracking:g} mm)\n"
        f"  translation/box excess:     {excess}\n"
        f"  maxima: step {1e3 * c.max_translation:.1f} mm (limit {1e3 * limits.max_translation:g}), turn {c.max_rotation:.3f} rad "
        f"(limit {limits.max_rotation:g}), outside the box {1e3 * c.max_outside:+.1f} mm, tilt {c.max_tilt:.3f} rad "
        f"(limit {limits.max_tilt:g}), tracking {1e3 * c.max_tracking:.1f} mm"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103])
    p.add_argument("--episodes", type=int, default=6, help="episodes per run")
    p.add_argument("--steps", type=int, default=60, help="steps per episode")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--backend", choices=BACKENDS, default="sim")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # the server logs every hold as an error; they are counted here
    tol = MotionTolerance()
    with ExitStack() as stack:
        if args.backend == "franky-sim":
            from vjepa_planning.robot_drivers.camera import StaticCamera
            from vjepa_planning.robot_drivers.franky_backend import FrankyBackend
            from vjepa_planning.robot_drivers.franky_sim import franky_sim_server

            limits, ip = FRANKY_SIM_LIMITS, stack.enter_context(franky_sim_server(lifetime_s=24 * 3600))
            backend = lambda: FrankyBackend(ip, StaticCamera(args.image_size), limits, realtime=False, relative_dynamics_factor=0.5)
        else:
            limits, backend = SafetyLimits(), None
        total = fuzz_all(args, limits, tol, backend)
    print(report(f"{args.backend}: total over seeds {args.seeds}", total, limits, tol))
    return 0


def fuzz_all(args: argparse.Namespace, limits: SafetyLimits, tol: MotionTolerance, backend) -> Counts:
    """Every (seed, mode, rotations) run of the command line, each printed as it ends; their sum."""
    runs = [(seed, mode, rot) for seed in args.seeds for mode in MODES for rot in (False, True)]
    total = Counts()
    with tqdm(total=len(runs) * args.episodes * args.steps, desc="fuzz steps") as bar:
        for seed, mode, rot in runs:
            c = run(seed, mode, rot, args.episodes, args.steps, args.image_size, limits, tol, progress=bar, backend=backend)
            total.add(c)
            tqdm.write(report(f"seed {seed} {mode} rotations={rot}", c, limits, tol))
            for why in c.held_reasons[:3]:
                tqdm.write(f"  held: {why}")
    return total


if __name__ == "__main__":
    raise SystemExit(main())
