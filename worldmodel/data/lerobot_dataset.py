"""Compatibility module: the LeRobot v3.0 dataset code now lives in the ``worldmodel.data.lerobot`` package
(format, files, stats, video, reader, writer, merge; the format and commit protocol are described in its
``__init__``). This module re-exports the names other code imports from here. Module-level hooks such as
``_replace`` (``worldmodel.data.lerobot.files``) and ``_probe_video`` (looked up in
``worldmodel.data.lerobot.reader``) must be monkeypatched in the module that calls them, not here.
"""

from __future__ import annotations

from worldmodel.data.lerobot import *  # noqa: F403 - the public names, and the same __all__
from worldmodel.data.lerobot import __all__  # noqa: F401
from worldmodel.data.lerobot.files import _replace  # noqa: F401
from worldmodel.data.lerobot.format import (  # noqa: F401
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_FEATURES,
    EPISODES_PATH,
    IMAGE_PREFIX,
    INDEX_COLUMNS,
    VIDEO_PATH,
)
from worldmodel.data.lerobot.stats import Stats, _aggregate_stats, _array_stats  # noqa: F401
from worldmodel.data.lerobot.video import _codec_options, _probe_video, _VideoEncoder  # noqa: F401
