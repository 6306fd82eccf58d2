"""Trajectory data: LeRobot v3.0-compatible dataset (pyarrow + PyAV) and the DROID importer."""

from worldmodel.data.lerobot_dataset import (
    ACTION_NAMES,
    STATE_NAMES,
    DatasetError,
    DatasetWarning,
    DatasetWriter,
    Episode,
    FeatureSpec,
    LeRobotDataset,
    SkippedEpisode,
    merge_datasets,
)

__all__ = [
    "ACTION_NAMES",
    "STATE_NAMES",
    "DatasetError",
    "DatasetWarning",
    "DatasetWriter",
    "Episode",
    "FeatureSpec",
    "LeRobotDataset",
    "SkippedEpisode",
    "import_droid",
    "merge_datasets",
    "state_deltas",
]


def __getattr__(name: str):  # the DROID importer pulls in h5py/scipy/tqdm: load it on first use
    if name in ("import_droid", "state_deltas"):
        from worldmodel.data import droid_import

        return getattr(droid_import, name)
    raise AttributeError(name)
