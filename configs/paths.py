"""The one rule for file settings, used by every command: `shipped:<file>` is a file the installed package
carries (checkpoints/, found through importlib.resources, so a stray ./checkpoints folder never shadows it);
anything else is the user's path, relative to the working directory. Errors name the setting and the path."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SHIPPED = "shipped:"


def shipped_dir() -> Path:
    """The installed package's checkpoints/ folder (a real folder: wheels and editable installs alike)."""
    return Path(str(files("vjepa_planning.checkpoints")))


def shipped_files() -> list[str]:
    return sorted(p.name for p in shipped_dir().glob("*.safetensors"))


def resolve_path(value: str | Path, setting: str, must_exist: bool = True) -> Path:
    """A config value -> an absolute path. `setting` names it in errors (e.g. "world_model.encoder");
    `must_exist=False` for outputs."""
    text = str(value)
    if text.startswith(SHIPPED):
        name = text[len(SHIPPED):]
        path = shipped_dir() / name
        if "/" in name or "\\" in name or not path.is_file():
            raise FileNotFoundError(f"{setting}: {text!r} is not a shipped file (shipped: {', '.join(shipped_files())})")
        return path
    path = Path(text).expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    if must_exist and not path.exists():
        named = "" if text == str(path) else f" ({text!r} from {Path.cwd()})"
        raise FileNotFoundError(f"{setting}: {path} does not exist{named}")
    return path
