"""Where episodes run: a process pool on this machine, or Ray (one machine or a cluster), behind one call.

`map_unordered(init, init_args, fn, jobs, ...)` starts `workers` workers, runs `init(*init_args)` once in
each (load the world model, make the sim), then `fn(job)` for every job, and yields the results as they
finish. Results stream back to the caller, which alone writes them (episodes.jsonl), so a retried job is
never recorded twice. With Ray a worker that dies (a killed process, a lost node) is restarted and its job
runs once more (unless `already_done` says its effect is there); a worker's second death raises.

Ray is an optional extra (`pip install '.[ray]'`): `address=None` starts a local instance with `workers`
CPUs, `address="auto"` or `"ray://head:10001"` joins a running cluster, whose nodes need this package
installed (the same version) to import `init` and `fn`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

ENGINES = ("pool", "ray")


def map_unordered(init: Callable[..., None], init_args: tuple, fn: Callable[[Any], Any], jobs: Iterable[Any], *,
                  workers: int, engine: str = "pool", address: str | None = None,
                  already_done: Callable[[Any], bool] | None = None) -> Iterator[Any]:
    """`already_done(job)` (Ray only) is asked before a job whose worker died is run again: True when the
    job's effect is already there (an episode committed before the worker died), and the retry yields None."""
    if engine == "pool":
        with mp.get_context("spawn").Pool(workers, initializer=init, initargs=init_args) as pool:
            yield from pool.imap_unordered(fn, list(jobs))
    elif engine == "ray":
        yield from _ray_map(init, init_args, fn, list(jobs), workers, address, already_done)
    else:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def _ray_map(init, init_args, fn, jobs: list, workers: int, address: str | None, already_done) -> Iterator[Any]:
    if not jobs:
        return
    try:
        import ray
    except ImportError as e:
        raise ValueError("engine=ray needs Ray: pip install 'vjepa-planning[ray]' (or pip install ray)") from e

    started = not ray.is_initialized()
    if started:
        kw = {"num_cpus": workers} if address is None else {"address": address}
        ray.init(**kw, include_dashboard=False, log_to_driver=False, configure_logging=False)

    cwd = os.getcwd()  # a config's relative paths mean on the workers what they mean here (shared filesystem)

    @ray.remote(num_cpus=1, max_restarts=1, max_task_retries=1)
    class Worker:
        def __init__(self):
            if os.path.isdir(cwd):
                os.chdir(cwd)
            # Restarted after a death: the first job it gets is the one that was running then (one at a time).
            self.retrying = ray.get_runtime_context().was_current_actor_reconstructed
            init(*init_args)

        def run(self, job):
            retry, self.retrying = self.retrying, False
            if retry and already_done is not None and already_done(job):
                return None
            return fn(job)

    try:
        actors = [Worker.remote() for _ in range(min(workers, len(jobs)))]
        idle, running, pending = list(actors), {}, list(reversed(jobs))
        while pending or running:
            while idle and pending:  # one job per worker at a time, in the given order
                actor = idle.pop()
                running[actor.run.remote(pending.pop())] = actor
            (done,), _ = ray.wait(list(running), num_returns=1)
            idle.append(running.pop(done))
            yield ray.get(done)  # a job whose worker died twice raises ray.exceptions.RayActorError here
    finally:
        if started:
            ray.shutdown()
