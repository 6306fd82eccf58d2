"""Model cards beside shipped weights: the training commands write them; hand-written sections survive."""

from __future__ import annotations

import json
import re
from pathlib import Path

# Sections a person writes (how the data was made) that no training run knows; kept when a card is rewritten.
KEPT_SECTIONS = ("Provenance of the data",)


def write_card(path: Path, card: str, before: str = "## Recipe") -> Path:
    """Write `card` to `path`, carrying over the KEPT_SECTIONS of the card already there (inserted
    before the `before` heading), so retraining does not erase what only a person could say."""
    kept = []
    if path.exists():
        old = path.read_text()
        for name in KEPT_SECTIONS:
            match = re.search(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", old, flags=re.S | re.M)
            if match and f"## {name}\n" not in card:
                kept.append(match.group(0).rstrip() + "\n\n")
    if kept and before in card:
        head, tail = card.split(before, 1)
        card = head + "".join(kept) + before + tail
    path.write_text(card)
    return path


def log_wall_time(log_path: Path) -> float:
    """Seconds of training in a run's log.jsonl, summed over resumed segments (elapsed_s restarts)."""
    total, last = 0.0, 0.0
    for ln in Path(log_path).read_text().splitlines():
        e = json.loads(ln).get("elapsed_s", 0.0)
        if e < last:
            total += last
        last = e
    return total + last
