"""What opening a trajectory dataset costs, by verify level, and the share of it the content hashes take.

    python benchmarks/dataset_open.py --data data/sim_v3

Prints seconds for LeRobotDataset(verify="meta") and (verify="fast"), and for sha256 over every data and
video file (the check `fast` adds for datasets our writer committed; older or foreign ones have no hashes).
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    from vjepa_planning.worldmodel.data.lerobot.files import file_sha256
    from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    for verify in ("meta", "fast"):
        t = time.perf_counter()
        ds = LeRobotDataset(args.data, verify=verify)
        print(f"open, verify={verify}: {time.perf_counter() - t:.2f} s ({ds.num_episodes} episodes)")
    records = [ds._record(i) for i in ds.episode_indices]
    files = sorted({r.data_path for r in records} | {vp for r in records for vp, _, _ in r.videos.values()})
    hashed = sum(bool(r.sha256) for r in records)
    t = time.perf_counter()
    size = sum(f.stat().st_size for f in files)
    for f in files:
        file_sha256(f)
    dt = time.perf_counter() - t
    print(f"sha256 of all {len(files)} data and video files ({size / 1e6:.0f} MB): {dt:.2f} s; "
          f"{hashed} of {len(records)} episodes carry hashes (checked by verify=fast)")


if __name__ == "__main__":
    main()
