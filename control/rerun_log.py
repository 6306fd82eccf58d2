"""Rerun logging for any command that runs episodes (`rerun=...` / `--rerun TARGET`).

TARGET is a path ending in .rrd (a recording to open later with `rerun file.rrd`), `spawn` (start a
local viewer) or `rerun+http://host:port/proxy` (a running viewer).

The layout follows LeRobot's dataset viewer (`lerobot-dataset-viz`), so a planned episode and a
recorded dataset episode can be opened side by side: timelines `frame_index` and `timestamp` (s), the
camera as `observation.images.<camera>`, and `state` and `action` as series named per dimension, the
action at the frame it was taken from (as in the dataset's rows). Beside them: the goal and sub-goal
images (once), the end-effector path, the planner's energy per iteration (timeline `planner_iteration`)
and the chosen energy; in the sim also the privileged distance to the goal and `next.success`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rerun as rr

from vjepa_planning.worldmodel.data.lerobot.format import ACTION_NAMES, IMAGE_PREFIX, STATE_NAMES


class RerunLogger:
    def __init__(self, target: str, app_id: str = "vjepa-planning", recording: str | None = None,
                 camera: str = "workspace", fps: float = 4.0):
        self.rec = rr.RecordingStream(app_id, recording_id=recording)
        if target.endswith(".rrd"):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            self.rec.save(target)
        elif target == "spawn":
            self.rec.spawn()
        else:
            self.rec.connect_grpc(target)
        self.camera, self.fps = f"{IMAGE_PREFIX}{camera}", float(fps)
        self.rec.log("state", rr.SeriesLines(names=list(STATE_NAMES)), static=True)
        self.rec.log("action", rr.SeriesLines(names=list(ACTION_NAMES)), static=True)
        self.path: list[np.ndarray] = []
        self._iteration = 0

    def _at(self, frame: int) -> None:
        self.rec.set_time("frame_index", sequence=frame)
        self.rec.set_time("timestamp", timestamp=frame / self.fps)

    def log_goal(self, image: np.ndarray) -> None:
        self.rec.log("goal/image", rr.Image(image), static=True)

    def log_subgoals(self, images: list[np.ndarray]) -> None:
        """Sub-goal photos planned toward before the goal, in order."""
        for i, image in enumerate(images, 1):
            self.rec.log(f"goal/subgoal_{i}", rr.Image(image), static=True)

    def log_step(self, step: int, image: np.ndarray, state: np.ndarray, action: np.ndarray | None, info: dict, energies: list[float] | None = None) -> None:
        """Observation ``step`` (image, state, info), reached by ``action`` (taken at frame step - 1)."""
        if action is not None:
            self._at(step - 1)
            self.rec.log("action", rr.Scalars(np.asarray(action, dtype=np.float64)))
        self._at(step)
        self.rec.log(self.camera, rr.Image(image))
        self.rec.log("state", rr.Scalars(np.asarray(state, dtype=np.float64)))
        self.path.append(np.asarray(state[:3], dtype=np.float64))
        self.rec.log("world/ee_path", rr.LineStrips3D([np.stack(self.path)]))
        self.rec.log("world/ee", rr.Points3D([self.path[-1]], radii=0.01))
        if "cube_pos" in info:
            self.rec.log("world/cube", rr.Points3D([info["cube_pos"]], radii=0.02, colors=[[220, 30, 25]]))
        if "distance" in info:
            self.rec.log("metrics/distance_to_goal", rr.Scalars(float(info["distance"])))
        if "success" in info:
            self.rec.log("next.success", rr.Scalars(float(bool(info["success"]))))
        if energies:
            self.rec.log("metrics/chosen_energy", rr.Scalars(float(energies[-1])))
            # Every planner iteration on its own timeline, so convergence within a step is visible.
            for e in energies:
                self.rec.set_time("planner_iteration", sequence=self._iteration)
                self.rec.log("planner/energy", rr.Scalars(float(e)))
                self._iteration += 1
            self.rec.reset_time()

    def close(self) -> None:
        self.rec.flush()
        self.rec.disconnect()
