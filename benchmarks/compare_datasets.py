"""Whether two trajectory datasets hold the same episodes (a refactor's check on collect-trajectories).

    python benchmarks/compare_datasets.py data/before data/after [--camera workspace]

Episode by episode (matched by index): are the actions, states, privileged extras and episode info equal
to the bit, and are the decoded camera frames equal? Prints the counts and the episodes that differ, with
the largest frame difference. Exit code 1 if any array or info differs (frames alone: 0, and said so,
since decoded video need not be bit-stable).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main() -> int:
    from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--camera", default="workspace")
    args = parser.parse_args()
    a, b = LeRobotDataset(args.before), LeRobotDataset(args.after)
    if a.episode_indices != b.episode_indices:
        print(f"episode indices differ: {a.episode_indices} vs {b.episode_indices}")
        return 1
    arrays_same, frames_same = 0, 0
    for ep in a.episode_indices:
        ea, eb = a.episode(ep), b.episode(ep)
        same = (np.array_equal(ea.actions, eb.actions) and np.array_equal(ea.states, eb.states)
                and ea.extras.keys() == eb.extras.keys() and all(np.array_equal(ea.extras[k], eb.extras[k]) for k in ea.extras)
                and a.episode_info(ep) == b.episode_info(ep))
        fa, fb = a.episode_frames(ep, args.camera), b.episode_frames(ep, args.camera)
        frame_diff = int(np.abs(fa.astype(np.int16) - fb.astype(np.int16)).max()) if fa.shape == fb.shape else None
        arrays_same += same
        frames_same += frame_diff == 0
        if not same or frame_diff != 0:
            print(f"  episode {ep} {a.episode_info(ep)}: arrays and info {'equal' if same else 'DIFFER'}, "
                  f"largest frame difference {frame_diff} (of 255)")
    n = len(a.episode_indices)
    print(f"{arrays_same}/{n} episodes with identical actions, states, extras and info; {frames_same}/{n} with identical frames")
    return 0 if arrays_same == n else 1


if __name__ == "__main__":
    sys.exit(main())
