"""The planning step under ``torch.compile`` (inductor), for the shapes a planner will use.

Compiling ``ACPredictor.shared_step`` fuses its layer norms, RoPE, softmaxes and residual adds into a
few C++ loops and, with the weights frozen into the graph (inductor's ``freezing``), runs the linear
layers on prepacked oneDNN weights with the GELU fused in. On a 2-core Xeon with AMX that is about
1.7x faster per plan than eager (0.30 vs 0.50 s per action at the shipped size, as
``benchmarks/planning_speed.py --compile auto false`` prints them). Compiling costs seconds per shape, so:

- shapes are static (``dynamic=False``: specialised kernels), one graph per (batch, own keys, history),
  unless the planner rolls out several batch sizes (iCEM's shrinking count): then the batch dimension
  is dynamic, one graph serves them all, and the warm-up compiles two graphs instead of two per size;
- only ``prepare`` compiles: ``VJEPAWorldModel.warm_up`` runs the planner's shapes through it before the
  first plan, and any other shape met later runs eagerly instead of stalling a control loop to compile;
- a compile that fails (no C++ compiler, an inductor error) is reported once and the step runs
  eagerly from then on: planning never stops for it;
- under a torch dispatch mode (FlopCounterMode, as benchmarks count FLOPs) the step runs eagerly: dynamo
  would otherwise give up on ``shared_step`` for good, silently, for every predictor in the process.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

MAX_GRAPHS = 8  # compiled shapes per CompiledStep (per predictor)
# torch._dynamo counts graphs per code object: every predictor's ``shared_step`` shares one, and a ninth graph
# in a process (a fifth compiled predictor) would silently run eagerly. The per-predictor limit above bounds it.
DYNAMO_RECOMPILE_LIMIT = 256


class CompiledStep:
    """Callable like ``ACPredictor.shared_step``: compiled for the shapes met inside ``prepare``, eager for others."""

    def __init__(self, step: Callable, log: Callable[[str], None] | None = None):
        self.eager = step
        self.compiled: Callable | None = None  # torch.compile(step), made by the first prepare
        self.dynamic_batch = False
        self.shapes: set[tuple] = set()  # shapes with a compiled graph
        self.error: str | None = None
        self.log = log or (lambda msg: None)
        self._compiling = False

    def prepare(self, run: Callable[[], object], dynamic_batch: bool = False) -> None:
        """Call ``run`` (rollouts of the shapes to compile for), compiling every new shape it steps through;
        ``dynamic_batch``: one graph for any candidate count (set by the first prepare)."""
        if self.compiled is None:
            self.dynamic_batch = dynamic_batch
            self.compiled = torch.compile(self.eager, dynamic=None if dynamic_batch else False)
        self._compiling = True
        try:
            run()
        finally:
            self._compiling = False

    def __call__(self, z_t, a_t, s_t, cos, sin, history, own, extrinsics):
        args = (z_t, a_t, s_t, cos, sin, history, own, extrinsics)
        batched = self.dynamic_batch and a_t.shape[0] > 1  # size 1 is always its own graph
        key = (
            z_t.shape[0] if not batched or z_t.shape[0] == 1 else "B",
            a_t.shape[0] if not batched else "B",
            None if history is None else history[0][0].shape[:3],
            None if own is None else own[0][0].shape[2],
            extrinsics is None,
        )
        if self.error is not None or (key not in self.shapes and (not self._compiling or len(self.shapes) >= MAX_GRAPHS)):
            return self.eager(*args)
        if _get_current_dispatch_mode() is not None:
            return self.eager(*args)
        new = key not in self.shapes
        t0 = time.perf_counter()
        try:
            if batched:
                for t in (z_t, a_t, s_t, *(x for kv in own or () for x in kv)):
                    if t.shape[0] == a_t.shape[0]:
                        torch._dynamo.mark_dynamic(t, 0)
            with torch._dynamo.config.patch(recompile_limit=DYNAMO_RECOMPILE_LIMIT), torch._inductor.config.patch(freezing=True):
                out = self.compiled(*args)
        except Exception as err:  # noqa: BLE001 -- any compiler failure: plan on, uncompiled
            self.error = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
            warnings.warn(f"compiled rollout unavailable ({self.error}); planning continues uncompiled", stacklevel=2)
            return self.eager(*args)
        if new:
            self.shapes.add(key)
            self.log(f"compiled the rollout step for {a_t.shape[0]} candidates in {time.perf_counter() - t0:.1f} s")
        return out
