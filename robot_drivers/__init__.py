"""Robot drivers: one `RobotDriver` interface for the sim, the remote robot server and a real Franka."""

from vjepa_planning.robot_drivers.base import ACTION_DIM, STATE_DIM, Observation, RobotDriver, SimCapabilities
from vjepa_planning.robot_drivers.safety import SafetyLayer, SafetyLimits, SafetyReport

__all__ = ["ACTION_DIM", "STATE_DIM", "Observation", "RobotDriver", "SafetyLayer", "SafetyLimits", "SafetyReport", "SimCapabilities"]
