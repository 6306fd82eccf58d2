"""Planner trade-off: success on the four sim tasks against planning time per action, per planner.

    python benchmarks/planner_tradeoff.py --seeds 10 --first-seed 2000     # cem, icem, cem_grad, mppi
    python benchmarks/planner_tradeoff.py --planners cem icem icem64=icem,planner.num_samples=64 --tasks reach grasp --seeds 4

For each planner preset (configs/planner/<name>.yaml, or `label=preset,override,...` for a variant):
- time per action: the planner on one real sim context (the shipped world model, its auto dtype), all
  presets timed in turn in one loop so they share the machine's load (median of `--repeats` rounds),
  with the candidates each plan rolled out;
- success: `sim-benchmark planner=<name>` on the same fixed seeds for every preset (planner policy only).
  Each preset's run is kept under `--out/<name>/` and reused when it exists with the same seeds and
  tasks, so an interrupted comparison resumes.

Writes `--out/tradeoff.md` (the table), `tradeoff.json` and `tradeoff.png` (success against seconds per
action, one point per preset and task). Choose tuning seeds here, not the seeds you report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

TASKS = ["reach", "grasp", "reach_with_object", "pick_and_place"]
PRESETS = ["cem", "icem", "cem_grad", "mppi"]


def parse_variant(spec: str) -> tuple[str, list[str]]:
    """'icem' -> ('icem', ['planner=icem']); 'icem64=icem,planner.num_samples=64' -> ('icem64', [...])."""
    label, _, rest = spec.partition("=")
    preset, *extra = (rest or label).split(",")
    return label, [f"planner={preset}", *extra]


def time_presets(presets: list[str], repeats: int, overrides: list[str]) -> dict[str, dict]:
    """Seconds per action (median) and candidates per plan of each preset (or variant) on one real context."""
    from vjepa_planning.control.build import compose_and_load, planner_config, planning_context
    from vjepa_planning.planners import make_planner

    cfg, wm = compose_and_load("plan_goal", overrides)
    z, s, past, z_goal = planning_context(wm, int(cfg.planner.context_frames), cfg.world_model.device)
    planners = {}
    for spec in presets:
        from vjepa_planning.configs import compose_config

        name, variant = parse_variant(spec)
        pc = compose_config("plan_goal", [*overrides, *variant]).planner  # the variant's own settings win
        planners[name] = make_planner(pc.name, wm, planner_config(pc))
    results = {name: p.plan(z, s, z_goal, past_actions=past) for name, p in planners.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in planners}
    for _ in range(repeats):
        for name, p in planners.items():  # interleaved: every preset sees the same load
            t0 = time.perf_counter()
            results[name] = p.plan(z, s, z_goal, past_actions=past, init=results[name])
            times[name].append(time.perf_counter() - t0)
    return {
        name: {"seconds_per_action": statistics.median(times[name]), "candidates": results[name].candidates,
               "iterations": len(results[name].iteration_energies)}
        for name in planners
    }  # fmt: skip


def run_success(spec: str, tasks: list[str], seeds: list[int], out: Path, workers: int, overrides: list[str]) -> dict:
    """sim-benchmark for one preset or variant (or its kept results when they match) -> its results.json."""
    from omegaconf import OmegaConf

    from vjepa_planning.configs import compose_config

    name, variant = parse_variant(spec)
    run_dir = out / name
    results = run_dir / "results.json"
    planner = OmegaConf.to_container(compose_config("sim_benchmark", [*overrides, *variant]).planner, resolve=True)
    if results.exists():
        cfg = json.loads(results.read_text())["config"]
        same = [int(x) for x in cfg.get("seed_list") or []] == seeds and list(cfg["tasks"]) == tasks
        if same and cfg.get("planner") == planner:
            print(f"{name}: reusing {results}", flush=True)
            return json.loads(results.read_text())
    cmd = [
        sys.executable, "-m", "vjepa_planning.apps.sim_benchmark", variant[0], f"tasks=[{','.join(tasks)}]",
        "policies=[planner]", f"seed_list=[{','.join(map(str, seeds))}]", f"workers={workers}", f"out={run_dir}",
        *overrides, *variant[1:],
    ]  # fmt: skip
    print(f"{name}: {' '.join(cmd[2:])}", flush=True)
    subprocess.run(cmd, check=True)
    return json.loads(results.read_text())


def wilson(k: int, n: int) -> tuple[float, float]:
    from vjepa_planning.control.evaluation import wilson_interval

    return wilson_interval(k, n)


def table(rows: list[dict], tasks: list[str], seeds: list[int]) -> str:
    head = "| planner | s / action | candidates / plan | " + " | ".join(tasks) + " | mean |"
    lines = [f"Success on seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} per task); time per action on one context.", "", head,
             "|" + "---|" * (4 + len(tasks))]  # fmt: skip
    for r in rows:
        cells = [f"{r['success'][t][0]}/{r['success'][t][1]}" for t in tasks]
        lines.append(f"| {r['planner']} | {r['seconds_per_action']:.3f} | {r['candidates']} | " + " | ".join(cells) + f" | {r['mean_success']:.0%} |")
    return "\n".join(lines)


def plot(rows: list[dict], tasks: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    markers = dict(zip(tasks, "osD^"))
    for i, r in enumerate(rows):
        color = f"C{i}"
        for t in tasks:
            k, n = r["success"][t]
            ax.scatter(r["seconds_per_action"], k / n, marker=markers[t], color=color, alpha=0.6)
        ax.scatter(r["seconds_per_action"], r["mean_success"], marker="*", s=180, color=color, label=r["planner"], edgecolor="k")
    for t, m in markers.items():
        ax.scatter([], [], marker=m, color="grey", label=t.replace("_", " "))
    ax.set_xlabel("planning time per action (s)")
    ax.set_ylabel("success rate (star: mean over tasks)")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(frameon=False, fontsize=8, ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    from vjepa_planning.worldmodel.compute_dtype import cpu_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planners", nargs="+", default=PRESETS)
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=2000, help="tuning seeds (the reported benchmark uses 1000..)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds")
    parser.add_argument("--out", type=Path, default=Path("runs/planner_tradeoff"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run, e.g. world_model.dtype=float32")
    args = parser.parse_args()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu_info().describe()}", flush=True)
    timing = time_presets(args.planners, args.repeats, args.overrides)  # first, on a quiet machine
    for name, t in timing.items():
        print(f"{name}: {t['seconds_per_action']:.3f} s per action, {t['candidates']} candidates, {t['iterations']} iterations", flush=True)
    rows = []
    for spec in args.planners:
        name = parse_variant(spec)[0]
        summary = run_success(spec, args.tasks, seeds, args.out, args.workers, args.overrides)["summary"]
        success = {r["task"]: (r["successes"], r["episodes"]) for r in summary if r["policy"] == "planner"}
        mean = statistics.mean(k / n for k, n in success.values())
        rows.append({"planner": name, **timing[name], "success": success, "mean_success": mean,
                     "ci95": {t: wilson(*success[t]) for t in args.tasks}})  # fmt: skip
    text = table(rows, args.tasks, seeds)
    (args.out / "tradeoff.md").write_text(f"CPU: {cpu_info().describe()}\n\n{text}\n")
    (args.out / "tradeoff.json").write_text(json.dumps({"cpu": cpu_info().describe(), "seeds": seeds, "rows": rows}, indent=1))
    plot(rows, args.tasks, args.out / "tradeoff.png")
    print(text)
    print(f"\nwrote {args.out / 'tradeoff.md'}, tradeoff.json, tradeoff.png")


if __name__ == "__main__":
    main()
