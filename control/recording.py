"""Record episodes driven through a RobotDriver into the trajectory dataset (LeRobot v3.0 layout).

Frame t holds the observation at step t and the action sent from it (after the safety layer); the final
frame holds the last observation and a zero action (worldmodel/data/lerobot/). Privileged sim
extras (end-effector and cube positions, success) are stored when the driver provides them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vjepa_planning.robot_drivers.base import Observation
from vjepa_planning.worldmodel.data.lerobot import DatasetWriter, FeatureSpec

PRIVILEGED_FEATURES = {
    "observation.ee_pos": FeatureSpec("float32", (3,)),
    "observation.cube_pos": FeatureSpec("float32", (3,)),
    "next.success": FeatureSpec("bool", (1,)),
}


class EpisodeRecorder:
    def __init__(self, root: str | Path, camera: str, image_shape: tuple[int, int], fps: int, privileged: bool):
        self.camera, self.privileged = camera, privileged
        self.writer = DatasetWriter(root, fps, {camera: image_shape}, PRIVILEGED_FEATURES if privileged else None)
        self._last: Observation | None = None
        self.task = ""

    def start(self, task: str, first: Observation) -> None:
        if self.writer.num_buffered_frames:
            self.writer.discard_episode()
        self.task, self._last = task, first

    def record(self, sent_action: np.ndarray, next_obs: Observation) -> None:
        """Log the step just taken: the previous observation with the action sent from it."""
        self._add(self._last, sent_action)
        self._last = next_obs

    def finish(self, info: dict[str, int | float | str] | None = None) -> int | None:
        """Commit the episode (the last observation with a zero action), with `info` in its metadata (e.g. the
        seed that reproduces it). None if nothing was recorded. Also the right call after a failure
        mid-episode: the steps so far are kept, atomically."""
        if self._last is None:
            return None
        self._add(self._last, np.zeros(7))
        self._last = None
        return self.writer.save_episode(info=info)

    def close(self) -> None:
        self.writer.close()

    def _add(self, obs: Observation, action: np.ndarray) -> None:
        extra = None
        if self.privileged:
            extra = {
                "observation.ee_pos": obs.info["ee_pos"],
                "observation.cube_pos": obs.info["cube_pos"],
                "next.success": np.array([bool(obs.info["success"])]),
            }
        self.writer.add_frame(obs.state, action, {self.camera: obs.image}, self.task, extra)
