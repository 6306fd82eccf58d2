"""sim-benchmark: success rates of the world-model planner beside the random floor and the oracle ceiling.

Writes results.json, results.md and results.png under --out; the engine is control/evaluation.py."""

from __future__ import annotations

import sys

from vjepa_planning.apps.cli import command, parse
from vjepa_planning.control.evaluation import benchmark


@command("sim-benchmark")
def main(argv: list[str] | None = None) -> None:
    cfg = parse(
        "sim_benchmark",
        __doc__.splitlines()[0],
        {
            "--seeds": ("seeds", "episodes per task and policy"),
            "--workers": ("workers", "parallel processes"),
            "--out": ("out", "output directory"),
            "--planner": ("planner", "cem | icem | cem_grad | mppi"),
            "--rerun": ("rerun", "directory for one .rrd recording per episode"),
        },
        argv,
        sweep=benchmark,
    )
    benchmark(cfg)


if __name__ == "__main__":
    sys.exit(main())
