"""Trajectory data: LeRobot v3.0-compatible dataset (pyarrow + PyAV) and the DROID importer."""

from vjepa_planning.worldmodel.data import lerobot
from vjepa_planning.worldmodel.data.lerobot import *  # noqa: F403 - the dataset's public names

__all__ = [*lerobot.__all__, "import_droid", "state_deltas"]  # noqa: F405 - the last two load lazily (below)


def __getattr__(name: str):  # the DROID importer pulls in h5py/scipy/tqdm: load it on first use
    if name in ("import_droid", "state_deltas"):
        from vjepa_planning.worldmodel.data import droid_import

        return getattr(droid_import, name)
    raise AttributeError(name)
