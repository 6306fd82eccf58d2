"""Sampling-based planning over action sequences, shared by CEM, iCEM and MPPI.

A planner reaches the world model only through `rollout(z, state, actions)` (worldmodel/protocol.py):
the context (z0, state0) is encoded once, every iteration rolls out a batch of K candidate sequences
from it, scores them, and refits the sampling distribution. CEM and MPPI differ only in that refit.

iCEM (Pinneri et al., 2020), the shipped default (configs/planner/icem.yaml), is CEM with four sampling
options, all off in PlannerConfig's defaults (plain CEM): coloured noise
along the horizon (`noise_beta`), a sample count that shrinks by `sample_decay` per iteration, a
share of the elites kept for the next iteration and, shifted by one step, for the next control step
(`keep_elites`), and an early stop once the elites' mean energy improves by less than `stop_tol`.
`grad_steps` then refines the returned plan by gradient descent on its energy through the world
model's differentiable rollout (world models that offer `rollout_differentiable`).

Energy: the L1 distance of the predicted embedding to the goal's, plus `gripper_cost` x |gripper deltas| and,
where the world model reads the goal image's gripper (a readout; `plan(goal_gripper=...)`),
`gripper_goal_weight` x |imagined gripper after the horizon - the goal's|.

Action layout (DESIGN.md): [dx, dy, dz, droll, dpitch, dyaw, dgripper]. By default the search covers
xyz and the gripper; rotation is held at zero (as V-JEPA 2-AC does) unless `search_rotation`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import torch

from vjepa_planning.planners.energy import l1_energy
from vjepa_planning.planners.noise import coloured_noise
from vjepa_planning.worldmodel.protocol import ContextRollout

log = logging.getLogger(__name__)
ACTION_DIM = 7


@dataclass(frozen=True)
class PlannerConfig:
    """Every sampling setting and its default: plain CEM (configs/planner/cem.yaml names only what it
    changes; icem.yaml, the shipped default, turns on iCEM's options; the `planner` config group is typed
    by this class, configs/__init__.py)."""

    horizon: int = 2
    num_samples: int = 128
    iterations: int = 5
    num_elites: int = 12
    max_translation: float = 0.05  # m: sampling bound per axis (the driver's safety clamp is separate)
    max_rotation: float = 0.1  # rad, used only with search_rotation
    search_rotation: bool = False
    search_gripper: bool = True
    init_std_translation: float = 0.03
    init_std_gripper: float = 0.6
    min_std: float = 0.002
    momentum: float = 0.1  # share of the previous mean/std kept at each refit
    all_steps_energy: bool = False  # True: sum the energy over every predicted step, not just the last
    # Energy per unit of |gripper delta|: the gripper moves only when the predicted images pay for it
    # (0.02 for the exterior model, which barely sees the fingers; benchmarks/gripper_sensitivity.py).
    gripper_cost: float = 0.005
    # Energy per unit of |imagined gripper - the goal image's| where the world model reads the gripper off
    # an image (a readout, worldmodel/readout.py): the embedding distance barely sees the fingers.
    gripper_goal_weight: float = 0.05
    temperature: float = 0.02  # MPPI only: softmax temperature on energies
    noise_beta: float = 0.0  # iCEM: sampling noise ~ 1/f^beta along the horizon (0 white, 2 smooth)
    sample_decay: float = 1.0  # iCEM: iteration i samples num_samples / sample_decay**i (at least 2 x elites)
    keep_elites: float = 0.0  # iCEM: share of the elites carried to the next iteration and control step
    stop_tol: float = 0.0  # stop iterating once the elite mean energy improves by less than this share
    grad_steps: int = 0  # Adam steps on the returned plan's energy through the differentiable rollout
    grad_lr: float = 0.002  # their step size (Adam: about this much per step, in m for xyz)
    seed: int | None = 0  # None: a fresh random stream per planner

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.num_samples < 2 or self.iterations < 1:
            raise ValueError("horizon >= 1, num_samples >= 2 and iterations >= 1 are required")
        if not 1 <= self.num_elites <= self.num_samples:
            raise ValueError(f"num_elites must be in [1, num_samples], got {self.num_elites}")
        if self.sample_decay < 1.0 or not 0.0 <= self.keep_elites <= 1.0 or self.stop_tol < 0 or self.grad_steps < 0:
            raise ValueError("sample_decay >= 1, keep_elites in [0, 1], stop_tol >= 0 and grad_steps >= 0 are required")

    def samples_at(self, iteration: int) -> int:
        """Candidates rolled out at `iteration` (0-based): iCEM's shrinking count."""
        floor = min(self.num_samples, 2 * self.num_elites)
        return max(floor, math.ceil(self.num_samples / self.sample_decay**iteration))

    def batch_sizes(self) -> list[int]:
        """The distinct candidate counts one plan rolls out (what a compiled rollout is prepared for)."""
        return sorted({self.samples_at(i) for i in range(self.iterations)}, reverse=True)


@dataclass(frozen=True)
class Goal:
    """What one plan's energy compares against."""

    z: torch.Tensor  # [1, N, D] the goal image's embedding
    gripper: float | None  # how closed the hand is in the goal image, if the world model can tell
    gripper_now: float  # the gripper's last measured state


def imagined_gripper(now: float, deltas: torch.Tensor) -> torch.Tensor:
    """deltas [K, H] -> [K] the gripper after them, clipped to [0, 1] at every step (as imagined states are)."""
    g = torch.full_like(deltas[:, 0], now)
    for h in range(deltas.shape[1]):
        g = (g + deltas[:, h]).clamp(0.0, 1.0)
    return g


@dataclass
class PlanResult:
    actions: torch.Tensor  # [H, 7] the plan (its first row is the action to execute)
    energy: float  # energy of the returned plan's best sample
    iteration_energies: list[float] = field(default_factory=list)  # best energy per iteration
    mean: torch.Tensor | None = None  # [H, 7] final sampling mean (warm start for the next step)
    std: torch.Tensor | None = None
    fallback: bool = False  # True when no finite energy was seen and the plan is "hold still"
    elites: torch.Tensor | None = None  # [E', H, 7] kept elites (keep_elites > 0): shifted into the next step
    candidates: int = 0  # sequences rolled out (the work this plan cost)

    @property
    def first_action(self) -> torch.Tensor:
        return self.actions[0]


class SamplingPlanner:
    def __init__(self, world_model, cfg: PlannerConfig = PlannerConfig()):
        self.world_model, self.cfg = world_model, cfg
        bound = torch.zeros(ACTION_DIM)  # symmetric per-dimension bounds; 0 = dimension held at zero
        bound[:3] = cfg.max_translation
        bound[3:6] = cfg.max_rotation if cfg.search_rotation else 0.0
        bound[6] = 1.0 if cfg.search_gripper else 0.0
        self.bound = bound
        std = torch.zeros(ACTION_DIM)
        std[:3] = cfg.init_std_translation
        std[3:6] = cfg.max_rotation / 2 if cfg.search_rotation else 0.0
        std[6] = cfg.init_std_gripper if cfg.search_gripper else 0.0
        self.init_std = std
        self.generator = torch.Generator().manual_seed(cfg.seed) if cfg.seed is not None else None

    def reseed(self, seed: int) -> None:
        """Restart the sampling noise (e.g. per benchmark episode, so a seed re-runs identically)."""
        self.generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def plan(
        self,
        z0: torch.Tensor,
        state0: torch.Tensor,
        z_goal: torch.Tensor,
        init: PlanResult | None = None,
        past_actions: torch.Tensor | None = None,
        goal_gripper: float | None = None,
    ) -> PlanResult:
        """z0 [1, N, D], state0 [1, 7] or [7], z_goal [1, N, D] -> PlanResult. `init` warm-starts from the
        previous step's plan, shifted by one step. With history, z0 is [1, T0, N, D], state0 [1, T0, 7]
        and past_actions [1, T0 - 1, 7] (the actions executed between those frames). `goal_gripper`: how
        closed the hand is in the goal image (0 open .. 1 closed), where the world model can tell."""
        cfg = self.cfg
        device = z0.device
        state0 = (state0.reshape(1, ACTION_DIM) if z0.ndim == 3 else state0).to(device=device, dtype=torch.float32)
        goal = Goal(z_goal, goal_gripper, float(state0.reshape(-1, ACTION_DIM)[-1, 6]))
        past_actions = None if past_actions is None else past_actions.to(device)
        rollout = self._rollout_fn(z0, state0, past_actions)
        bound = self.bound.to(device)
        mean, std = self._initial_distribution(init, device)
        kept = self._shifted_elites(init, device)  # [E', H, 7] or None
        best_actions, best_energy, history, elite_energy, candidates = None, float("inf"), [], float("inf"), 0
        for i in range(cfg.iterations):
            # Sample K sequences around the current distribution, inside the bounds.
            k = cfg.samples_at(i)
            noise = coloured_noise(k, cfg.horizon, ACTION_DIM, cfg.noise_beta, self.generator).to(device)
            samples = (mean + std * noise).clamp(-bound, bound)
            samples[0] = mean.clamp(-bound, bound)  # keep the current mean in the race
            if kept is not None:  # iCEM: last iteration's (or step's) best, re-scored here
                samples[1 : 1 + kept.shape[0]] = kept[: k - 1]
            # Roll out all candidates from the shared context and score them.
            energy = self._energy(rollout(samples), samples, goal)
            candidates += k
            k_best = int(torch.argmin(energy))
            history.append(float(energy[k_best]))
            if energy[k_best] < best_energy:
                best_energy, best_actions = float(energy[k_best]), samples[k_best].clone()
            if not torch.isfinite(energy).any():
                continue
            # Refit the sampling distribution (CEM: elites; MPPI: energy-weighted), with momentum.
            new_mean, new_std = self.refit(samples, energy)
            mean = cfg.momentum * mean + (1 - cfg.momentum) * new_mean
            std = cfg.momentum * std + (1 - cfg.momentum) * new_std
            std = torch.maximum(std, self._min_std(device))
            kept = self._keep(samples, energy)
            # Stop early once the elites stop improving.
            if cfg.stop_tol:
                previous, elite_energy = elite_energy, float(torch.topk(energy, cfg.num_elites, largest=False).values.mean())
                if previous - elite_energy < cfg.stop_tol * abs(previous):
                    break
        if best_actions is None:
            log.warning("planner: every candidate had a non-finite energy; holding still")
            hold = torch.zeros(cfg.horizon, ACTION_DIM, device=device)
            return PlanResult(hold, float("inf"), history, mean, std, fallback=True, candidates=candidates)
        plan = self.select(mean.clamp(-bound, bound), best_actions)
        if cfg.grad_steps:
            plan = self._refine(plan, z0, state0, past_actions, goal, bound)
        return PlanResult(plan, best_energy, history, mean, std, elites=kept, candidates=candidates)

    def _energy(self, predicted: torch.Tensor, samples: torch.Tensor, goal: Goal) -> torch.Tensor:
        """[K] energy of each candidate: embedding distance to the goal (+ the gripper's cost, + how far its
        imagined gripper ends from the goal image's); inf if not finite."""
        cfg = self.cfg
        energy = l1_energy(predicted, goal.z, cfg.all_steps_energy)
        if cfg.gripper_cost:
            energy = energy + cfg.gripper_cost * samples[..., 6].abs().sum(dim=1)
        if cfg.gripper_goal_weight and goal.gripper is not None:
            energy = energy + cfg.gripper_goal_weight * (imagined_gripper(goal.gripper_now, samples[..., 6]) - goal.gripper).abs()
        return torch.where(torch.isfinite(energy), energy, torch.full_like(energy, float("inf")))

    def _refine(self, plan, z0, state0, past_actions, goal: Goal, bound) -> torch.Tensor:
        """A few Adam steps on the plan's energy through the differentiable rollout, inside the bounds and
        only on the searched dimensions; kept only if the refined plan scores lower than the plan given."""
        wm = self.world_model
        if not hasattr(wm, "rollout_differentiable"):
            raise ValueError("planner.grad_steps > 0 needs a world model with a differentiable rollout (rollout_differentiable)")
        searched = (bound > 0).to(plan.dtype)  # [7]
        with torch.enable_grad():
            x = plan.detach().clone()[None].requires_grad_(True)  # [1, H, 7]
            opt = torch.optim.Adam([x], lr=self.cfg.grad_lr)
            energies = []
            for _ in range(self.cfg.grad_steps + 1):
                energy = self._energy(wm.rollout_differentiable(z0, state0, x, past_actions=past_actions), x, goal)
                energies.append((float(energy.detach()), x.detach()[0].clone()))
                opt.zero_grad()
                energy.sum().backward()
                x.grad.mul_(searched)
                opt.step()
                with torch.no_grad():
                    x.copy_(torch.maximum(torch.minimum(x, bound), -bound))
        best_energy, best = min(energies, key=lambda e: e[0])
        return best if math.isfinite(best_energy) else plan

    # ---- the parts CEM and MPPI choose -------------------------------------------------------------
    def refit(self, samples: torch.Tensor, energy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def select(self, mean: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
        """Which sequence to return: the refitted mean (smooth) by default."""
        return mean

    # ---- helpers ----------------------------------------------------------------------------------
    def _rollout_fn(self, z0, state0, past_actions):
        """candidates [K, H, 7] -> predictions. A world model that can (``rollout_context``) runs the
        observation's history once per plan, shared by every iteration; any other is called as is."""
        wm = self.world_model
        if isinstance(wm, ContextRollout):
            context = wm.rollout_context(z0, state0, past_actions=past_actions)
            return lambda samples: wm.rollout_from(context, samples)
        kw = {} if past_actions is None else {"past_actions": past_actions}
        return lambda samples: wm.rollout(z0, state0, samples, **kw)

    def _initial_distribution(self, init: PlanResult | None, device) -> tuple[torch.Tensor, torch.Tensor]:
        H = self.cfg.horizon
        std = self.init_std.to(device).expand(H, ACTION_DIM).clone()
        mean = torch.zeros(H, ACTION_DIM, device=device)
        if init is not None and init.mean is not None and not init.fallback:
            prev = init.mean.to(device)
            shifted = prev[1:]  # what the previous plan meant to do next
            mean[: shifted.shape[0]] = shifted[:H]
        return mean, std

    def _keep(self, samples: torch.Tensor, energy: torch.Tensor) -> torch.Tensor | None:
        """iCEM: the best `keep_elites` share of the elites, [E', H, 7] (None when off)."""
        n = int(self.cfg.keep_elites * self.cfg.num_elites)
        if n < 1:
            return None
        return samples[torch.topk(energy, min(n, energy.shape[0]), largest=False).indices].clone()

    def _shifted_elites(self, init: PlanResult | None, device) -> torch.Tensor | None:
        """The previous step's kept elites advanced by one step (their last action repeated as the new tail)."""
        if init is None or init.elites is None or init.fallback or self.cfg.keep_elites <= 0:
            return None
        e = init.elites.to(device)  # [E', H, 7]
        if e.shape[1] != self.cfg.horizon:
            return None
        return torch.cat([e[:, 1:], e[:, -1:]], dim=1)  # [E', H, 7]

    def _min_std(self, device) -> torch.Tensor:
        return torch.where(self.init_std > 0, torch.full_like(self.init_std, self.cfg.min_std), self.init_std).to(device)
