"""Latency of the robot server on loopback: ping and observation round trips, and several clients at once.

    python benchmarks/robot_server_load.py [--clients 4] [--requests 250] [--image-size 256] [--auth]

Starts a sim-backend server in-process on 127.0.0.1 (a random port), then measures, client side:
  1. ping round trip (one client),
  2. observe round trip with one image of --image-size (one client; the sim serves its cached frame, so this
     is the protocol: encoding, HMAC if --auth, transport, decoding),
  3. act round trip (one client; includes one MuJoCo control step and a render),
  4. --clients clients each sending --requests requests (alternating observe and ping) at once,
  5. the watchdog under load: a controller moves the arm and goes silent while --clients clients flood the
     server with goal_image requests (a render each); how long after the controller's last request the arm had stopped, against
     --watchdog (the target: at most the limit + 100 ms), over --trials trials,
and checks every request was answered. Bounded: a fixed request count and a 120 s wall-clock cap.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import numpy as np

from vjepa_planning.robot_drivers.backends import SimBackend
from vjepa_planning.robot_drivers.remote_driver import RemoteDriver
from vjepa_planning.robot_drivers.server import RobotServer

WALL_CLOCK_CAP_S = 120.0


def percentiles(lat: list[float]) -> str:
    a = 1e3 * np.asarray(lat)
    return f"p50 {np.percentile(a, 50):7.3f} ms   p99 {np.percentile(a, 99):7.3f} ms   (n={len(a)})"


def timed(fn, n: int, deadline: float) -> list[float]:
    out = []
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--requests", type=int, default=250, help="requests per client in the concurrent phase")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--auth", action="store_true", help="use a shared secret (HMAC on every request and reply)")
    p.add_argument("--watchdog", type=float, default=0.5, help="watchdog limit (s) of the watchdog-under-load phase")
    p.add_argument("--trials", type=int, default=3, help="watchdog stops measured under load")
    args = p.parse_args(argv)
    deadline = time.monotonic() + WALL_CLOCK_CAP_S
    secret = os.urandom(32).hex().encode() if args.auth else None

    with RobotServer(lambda: SimBackend(image_size=args.image_size), port=0, watchdog_s=0, secret=secret) as srv:
        print(f"robot server on 127.0.0.1:{srv.port}, sim backend, {args.image_size}x{args.image_size} images, auth {'on' if secret else 'off'}")
        with RemoteDriver("127.0.0.1", srv.port, secret=secret, heartbeat=False) as d:
            d.reset(seed=0)
            timed(d.ping, 50, deadline)  # warm-up
            print(f"ping round trip            {percentiles(timed(d.ping, 500, deadline))}")
            obs_lat = timed(d.observe, 300, deadline)
            nbytes = d.observe().image.nbytes
            print(f"observe round trip ({nbytes // 1024} KiB image) {percentiles(obs_lat)}")
            print(f"act round trip (sim step)  {percentiles(timed(lambda: d.act(np.zeros(7)), 100, deadline))}")

        results: list[list[float]] = [[] for _ in range(args.clients)]
        failures: list[str] = []
        before = sum(srv.stats[k] for k in ("observe", "ping"))

        def client(i: int) -> None:
            try:
                with RemoteDriver("127.0.0.1", srv.port, secret=secret, timeout_s=10.0, heartbeat=False) as c:
                    for k in range(args.requests):
                        if time.monotonic() > deadline:
                            failures.append(f"client {i}: wall-clock cap reached after {k} requests")
                            return
                        t = time.perf_counter()
                        c.observe() if k % 2 == 0 else c.ping()
                        results[i].append(time.perf_counter() - t)
            except Exception as e:  # noqa: BLE001
                failures.append(f"client {i}: {e}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(WALL_CLOCK_CAP_S)
        wall = time.perf_counter() - t0
        lat = [x for r in results for x in r]
        answered = sum(srv.stats[k] for k in ("observe", "ping")) - before
        sent = args.clients * args.requests
        print(f"{args.clients} clients x {args.requests} (observe/ping) {percentiles(lat)}   {len(lat) / wall:.0f} req/s")
        print(f"sent {sent}, answered {answered}, dropped {sent - len(lat)}" + (f", failures: {failures}" if failures else ""))
    late = watchdog_under_load(args, secret, deadline)
    return 0 if not failures and len(lat) == sent == answered and not late else 1


def watchdog_under_load(args, secret: bytes | None, deadline: float) -> bool:
    """Phase 5; True if any stop came later than the limit + 100 ms."""
    limit = args.watchdog
    with RobotServer(lambda: SimBackend(image_size=args.image_size), port=0, watchdog_s=limit, secret=secret) as srv:
        flooding = threading.Event()

        def flood() -> None:
            with RemoteDriver("127.0.0.1", srv.port, secret=secret, timeout_s=10.0, heartbeat=False) as c:
                while flooding.is_set() and time.monotonic() < deadline:
                    c.goal_image()  # a render per request: the slow kind that queues up

        with RemoteDriver("127.0.0.1", srv.port, secret=secret, heartbeat=False) as controller:
            for _ in range(args.trials):
                controller.reset(seed=0)
                flooding.set()
                loaders = [threading.Thread(target=flood) for _ in range(args.clients)]
                for t in loaders:
                    t.start()
                controller.act([0.01, 0, 0, 0, 0, 0, 0])  # moves the arm, then falls silent
                time.sleep(limit + 0.5)
                flooding.clear()
                for t in loaders:
                    t.join(30)
        stops = srv.watchdog_stops
    worst = max(stops, default=float("nan"))
    print(f"watchdog under load ({args.clients} clients flooding goal_image): the arm had stopped "
          f"{', '.join(f'{s:.3f}' for s in stops)} s after the controller's last request "
          f"(limit {limit:g} s; worst +{1e3 * (worst - limit):.0f} ms, target <= +100 ms)")
    return len(stops) != args.trials or worst > limit + 0.1


if __name__ == "__main__":
    sys.exit(main())
