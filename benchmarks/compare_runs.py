"""Whether two sim-benchmark runs behaved the same, episode by episode (a refactor's or a speed-up's check).

    python benchmarks/compare_runs.py runs/bench_before/results.json runs/bench_after/results.json

Matches episodes by (task, policy, seed) and prints how many agree exactly on success, steps, final distance,
final energy and goal images, then every one that differs. Exit code 1 if any differs or is missing.
"""

from __future__ import annotations

import argparse
import json
import sys

FIELDS = ("success", "steps", "final_distance", "final_energy", "goal_images")


def load(path: str) -> dict[tuple, dict]:
    try:
        episodes = json.load(open(path))["episodes"]
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"compare_runs: {path}: not a sim-benchmark results.json ({e})") from e
    return {(e["task"], e["policy"], e["seed"]): e for e in episodes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args()
    a, b = load(args.before), load(args.after)
    differ = [(k, [(f, a[k].get(f), b[k].get(f)) for f in FIELDS if a[k].get(f) != b[k].get(f)]) for k in sorted(a.keys() & b.keys())]
    differ = [(k, d) for k, d in differ if d]
    missing = sorted(a.keys() ^ b.keys())
    same = len(a.keys() & b.keys()) - len(differ)
    print(f"{same}/{len(a.keys() | b.keys())} episodes identical ({', '.join(FIELDS)})")
    for k, d in differ:
        print(f"  {k}: " + "; ".join(f"{f} {x} -> {y}" for f, x, y in d))
    for k in missing:
        print(f"  {k}: only in {'before' if k in a else 'after'}")
    return 1 if differ or missing else 0


if __name__ == "__main__":
    sys.exit(main())
