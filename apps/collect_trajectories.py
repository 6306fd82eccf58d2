"""collect-trajectories: noisy oracle demonstrations and random exploration into a trajectory dataset.

The engine (parallel workers, crash retries, resuming into an existing dataset) is control/collection.py."""

from __future__ import annotations

import json
import sys

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.control.collection import CollectionError, collect


@command("collect-trajectories")
def main(argv: list[str] | None = None) -> int:
    cfg = parse(
        "collect_trajectories",
        __doc__.splitlines()[0],
        {
            "--out": ("out", "dataset directory (appended to if it exists)"),
            "--episodes": ("episodes", "number of episodes"),
            "--workers": ("workers", "parallel processes"),
            "--size": ("env.image_size", "camera image side in pixels"),
            "--seed": ("env.seed", "seed of the first episode"),
            "--camera": ("env.camera", "sim camera: exterior | workspace (also the dataset's camera name)"),
        },
        argv,
    )
    try:
        results = collect(cfg)
    except CollectionError as e:
        print(f"collect-trajectories: {e}", file=sys.stderr)
        return 1
    summary = {}
    for r in results:
        key = f"{r['task']}/{r['policy']}"
        s = summary.setdefault(key, {"episodes": 0, "success": 0, "frames": 0})
        s["episodes"] += 1
        s["success"] += r["success"]
        s["frames"] += r["length"]
    print(json.dumps({"out": str(cfg.out), "episodes": len(results), "by_task_policy": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
