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

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from configs import compose_config

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
) -> DictConfig:
    """flags: {"--goal": ("goal", "help text")} — the option and the config key it sets."""
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
    parser.add_argument("overrides", nargs="*", help="Hydra overrides KEY=VALUE")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    overrides = list(args.overrides)
    for bad in [o for o in overrides if "=" not in o]:
        parser.error(f"argument {bad!r} is neither a --flag nor a KEY=VALUE override")
    for flag, (key, _) in flags.items():
        value = getattr(args, key.replace(".", "__"))
        if value is not None:
            overrides.append(f"{key}={_quote(value)}")
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
