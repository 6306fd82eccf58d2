"""Shared command-line plumbing: every command composes its Hydra config from `configs/`.

Both styles work on every command and mix freely:
    plan-goal --goal goal.png planner.num_samples=256 driver=remote driver.host=10.0.0.2
`--flag value` options are declared per command and map onto config keys; everything else is a Hydra
override. The composed config is never mutated afterwards: pieces receive their own sub-config.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Callable

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vjepa_planning.configs import compose_config

DEBUG_ENV = "VJEPA_DEBUG"
# What a person's input can cause: bad files (goal images, checkpoints, datasets, specs: ValueError and its
# subclasses GoalImageError, DatasetError, CheckpointMismatchError), missing or unreadable paths, bad config.
USER_ERRORS = (ValueError, OSError, HydraException, OmegaConfBaseException)


def command(name: str):
    """Wrap a command's `main(argv)`: an error caused by the user's input prints one line, `<name>: error:
    <what>`, and returns exit code 2; `--debug` (or $VJEPA_DEBUG=1) lets the traceback through instead."""

    def wrap(main):
        @functools.wraps(main)
        def run(argv: list[str] | None = None):
            argv = list(sys.argv[1:] if argv is None else argv)
            if "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                return main(argv)
            try:
                return main(argv)
            except USER_ERRORS as e:
                print(f"{name}: error: {one_line(e)}", file=sys.stderr)
                return 2

        return run

    return wrap


def one_line(e: BaseException) -> str:
    lines = [x.strip() for x in str(e).strip().splitlines() if x.strip()] or [type(e).__name__]
    more = f" (+{len(lines) - 1} more lines; rerun with --debug)" if len(lines) > 1 else ""
    return lines[0] + more


def parse(
    config_name: str,
    description: str,
    flags: dict[str, tuple[str, str]],
    argv: list[str] | None = None,
    sweep: Callable[[DictConfig], object] | None = None,
) -> DictConfig:
    """flags: {"--goal": ("goal", "help text")} — the option and the config key it sets. A command that
    passes `sweep` (what it does with a config) also takes `-m`: a Hydra multirun, see `multirun`."""
    parser = argparse.ArgumentParser(
        prog=config_name.replace("_", "-"),
        description=description,
        epilog="Any other KEY=VALUE argument is a Hydra override, e.g. planner.num_samples=256. "
        "--cfg prints the composed config and exits.",
    )
    for flag, (key, help_text) in flags.items():
        parser.add_argument(flag, dest=key.replace(".", "__"), default=None, help=f"{help_text} (config: {key})")
    parser.add_argument("--cfg", action="store_true", help="print the composed config and exit")
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks for input errors (or set ${DEBUG_ENV}=1)")
    if sweep is not None:
        parser.add_argument("-m", "--multirun", action="store_true",
                            help="one run per combination of comma-separated override values (a Hydra sweep)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides KEY=VALUE")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    overrides = list(args.overrides)
    for bad in [o for o in overrides if "=" not in o]:
        parser.error(f"argument {bad!r} is neither a --flag nor a KEY=VALUE override")
    for flag, (key, _) in flags.items():
        value = getattr(args, key.replace(".", "__"))
        if value is not None:
            overrides.append(f"{key}={_quote(value)}")
    if sweep is not None and args.multirun:
        multirun(config_name, overrides, sweep)
        raise SystemExit(0)
    cfg = compose_config(config_name, overrides)
    if args.cfg:
        print(OmegaConf.to_yaml(cfg))
        raise SystemExit(0)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return cfg


def _quote(value: str) -> str:
    """Quote a flag's value for Hydra's override grammar (paths with '=' or spaces stay one value)."""
    if any(c in value for c in " =,[]{}()'\"\\:") and not (value.startswith("'") or value.startswith('"')):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return value


def multirun(config_name: str, overrides: list[str], task: Callable[[DictConfig], object]) -> None:
    """Hydra's sweeper and launcher over `task`: one job per combination of the sweep overrides
    (`planner.num_samples=64,128 planner=cem,mppi`), each writing under `<out>/<its overrides>/` with the
    composed config in `.hydra/`. Jobs run one after another here; `hydra/launcher=submitit_slurm` (pip install
    hydra-submitit-launcher) sends each to SLURM instead."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from vjepa_planning.configs import _register_schemas

    def job(cfg: DictConfig) -> object:
        cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        cfg.out = HydraConfig.get().runtime.output_dir
        OmegaConf.set_readonly(cfg, True)
        return task(cfg)

    _register_schemas()
    fixed = sorted({o.key_or_group for o in OverridesParser.create().parse_overrides(overrides) if not o.is_sweep_override()})
    placement = ["hydra.sweep.dir=${out}", "hydra.sweep.subdir=${hydra.job.override_dirname}", "hydra.job.chdir=false",
                 f"hydra.job.config.override_dirname.exclude_keys=[{','.join(fixed)}]"]  # a job's folder: its sweep values
    argv, sys.argv = sys.argv, [sys.argv[0], "--multirun", *placement, *overrides]
    try:
        hydra.main(config_path="pkg://vjepa_planning.configs", config_name=config_name, version_base="1.3")(job)()
    finally:
        sys.argv = argv
