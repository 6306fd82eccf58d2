"""Latent planners: CEM and MPPI over action sequences, scored by the world model's predicted embeddings."""

from vjepa_planning.planners.base import PlannerConfig, PlanResult, SamplingPlanner
from vjepa_planning.planners.cem import CEMPlanner
from vjepa_planning.planners.mppi import MPPIPlanner
from vjepa_planning.planners.energy import l1_energy

# iCEM and gradient-refined CEM are CEM's refit with other sampling settings (configs/planner/*.yaml).
PLANNERS = {"cem": CEMPlanner, "icem": CEMPlanner, "cem_grad": CEMPlanner, "mppi": MPPIPlanner}


def make_planner(name: str, world_model, cfg: PlannerConfig) -> SamplingPlanner:
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose one of {sorted(PLANNERS)}")
    return PLANNERS[name](world_model, cfg)


__all__ = ["PLANNERS", "CEMPlanner", "MPPIPlanner", "PlanResult", "PlannerConfig", "SamplingPlanner", "l1_energy", "make_planner"]
