"""The episode spec, re-exported where the tasks have always imported it from: it lives in
robot_drivers/episode_spec.py so that a real-arm backend can check specs without MuJoCo or gymnasium."""

from vjepa_planning.robot_drivers.episode_spec import MAX_EXTRA_DEPTH, MAX_SPEC_CHARS, TASK_NAMES, EpisodeSpec

__all__ = ["MAX_EXTRA_DEPTH", "MAX_SPEC_CHARS", "TASK_NAMES", "EpisodeSpec"]
