"""merge-datasets PART [PART ...] --out DIR [--copy]

Combines trajectory datasets (e.g. one per collection machine or worker) into a new one at DIR, in the
order given, renumbering episodes, rows and tasks. Videos are hard-linked where the file system allows,
copied otherwise or with `--copy`. The engine is `merge_datasets` (worldmodel/data/lerobot/merge.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vjepa_planning.apps.cli import DEBUG_ENV, command
from vjepa_planning.worldmodel.data.lerobot import merge_datasets


@command("merge-datasets")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="merge-datasets", description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", metavar="PART", help="dataset directories, merged in this order")
    parser.add_argument("--out", required=True, metavar="DIR", help="the merged dataset's directory: new, or an empty one")
    parser.add_argument("--copy", action="store_true", help="copy the videos instead of hard-linking them")
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks for input errors (or set ${DEBUG_ENV}=1)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    # merge_datasets would append to an existing dataset; from the command line that is more likely a typo.
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} already exists and is not an empty directory")
    episodes = merge_datasets(args.parts, out, link=not args.copy)
    print(f"merged {len(episodes)} episode(s) from {len(args.parts)} dataset(s) into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
