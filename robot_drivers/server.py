"""The robot server: one robot backend behind a ZeroMQ ROUTER socket, with its own safety layer and watchdog.

It runs on the computer wired to the arm (or anywhere, for the sim backend) and answers the requests of
`robot_drivers/protocol.py` one at a time, in arrival order, from any number of clients.

Whatever a client sends, what reaches the backend is bounded here:
  * per-step clamps and the workspace box (`SafetyLayer`, from the server's own config) plus gripper limits
    (a range within [0, 1] and a per-step change), applied to every `act`;
  * one controller at a time (a lease): the first `reset` gives the arm to its client session; `act`, `reset`
    and `stop` from any other session get a `busy` reply unless they ask for a takeover (`takeover: true`),
    which is logged and reported to the previous controller (`taken_over`) on its next command. The lease ends
    when its holder sends `release` (the remote driver does on close) or is silent for `watchdog_s`.
    `hello`, `ping`, `observe` and `goal_image` stay open to every (authenticated) client;
  * the measured motion: after every `act` the server reads the arm back and checks the step it actually
    made (size, rotation, tracking error, the box; `safety.motion_violation`). A violation stops the arm and
    is the act's reply (`motion_limit`); further `act`s are refused until a `reset`. An asynchronous backend
    (its act returns while the arm moves) is checked at its next act, without the tracking error;
  * a watchdog: once the controlling client has moved the arm, a silence of `watchdog_s` from it stops the
    arm; further `act`s are refused until a `reset`;
  * `stop`: stops the arm, same refusal until `reset`;
  * access control: loopback by default; binding to any other address needs CURVE (`robot_drivers/curve.py`:
    encrypted traffic, and only clients whose public key the server holds get a connection). A shared secret
    adds an HMAC on every request, signed for this server process (unauthenticated requests, and requests
    signed for an earlier process of the server, are refused, logged, and never reach the backend);
  * malformed, oversized, unknown-version or schema-violating messages get an error reply (libzmq drops the
    connection of a peer whose message exceeds 4x the request cap before it is buffered); the loop survives
    them and any backend exception.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import zmq

from vjepa_planning.robot_drivers.curve import ServerKeys, serve_with
from vjepa_planning.robot_drivers.protocol import (
    CONTROL,
    DEFAULT_PORT,
    MAX_REPLY_BYTES,
    MAX_REQUEST_BYTES,
    PROTOCOL_VERSION,
    ReplayGuard,
    RobotProtocolError,
    decode_request_envelope,
    encode_observation,
    encode_reply,
    is_loopback,
    parse_request_body,
    signed_for,
    verify_request,
)
from vjepa_planning.robot_drivers.backends import Backend, SimulatedScene
from vjepa_planning.robot_drivers.safety import MotionTolerance, SafetyLayer, SafetyLimits, motion_violation

log = logging.getLogger(__name__)

WATCHDOG_TICK_MS = 20  # the longest an idle loop waits before looking at the watchdog again
PEER_QUEUE = 64  # messages queued per client before libzmq stops reading its connection


# ---- the server ---------------------------------------------------------------------------------------


class RobotServer:
    """Serve one backend. `serve_forever()` in the calling thread, or `start()` for a background thread.

    `backend` may be a backend or a zero-argument factory; a factory runs in the serving thread (MuJoCo's GL
    context then lives in the thread that renders).
    """

    def __init__(
        self,
        backend: Backend | Callable[[], Backend],
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        secret: bytes | None = None,
        limits: SafetyLimits = SafetyLimits(),
        watchdog_s: float = 2.0,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_reply_bytes: int = MAX_REPLY_BYTES,
        max_clock_skew_s: float = 30.0,
        curve: ServerKeys | None = None,
        motion_tolerance: MotionTolerance = MotionTolerance(),
    ):
        if not is_loopback(host) and curve is None:
            raise ValueError(
                f"refusing to bind the robot server to {host!r} without CURVE keys: anyone on the network could read the "
                "traffic or move the arm. Make keys with `robot-server --new-keys DIR` and set curve.server_secret_key and "
                "curve.authorized_clients (docs/real_franka.md), or bind to 127.0.0.1"
            )
        self.curve = curve
        self.motion_tolerance = motion_tolerance
        self._last_step: tuple[np.ndarray, np.ndarray] | None = None  # (state before, sent) of an asynchronous act
        self._backend_or_factory = backend
        self.host, self.requested_port = host, int(port)
        self.secret = secret
        self.safety = SafetyLayer(limits)  # the only safety layer on this path: backends execute what it lets through
        self.watchdog_s = float(watchdog_s)
        self.max_request_bytes, self.max_reply_bytes = int(max_request_bytes), int(max_reply_bytes)
        self.guard = ReplayGuard(max_clock_skew_s)
        self.server_id = os.urandom(8).hex()
        self.backend: Backend | None = None
        self.port: int | None = None
        self.stats: Counter[str] = Counter()
        self._stop_event = threading.Event()
        self._ready_event = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        # episode / watchdog state
        self._episode_ready = False
        self._halted: str | None = None
        self._armed = False
        self._controller: str | None = None  # the session holding the lease
        self._last_contact = 0.0  # its last request (monotonic)
        self._taken_from: dict[str, str] = {}  # session -> what to tell it about the takeover, on its next command
        self.watchdog_stops: list[float] = []  # for each watchdog stop: controller silence when the arm had stopped (s)
        self._refusal_window = 0.0
        self._refusals_logged = 0
        self._suppressed_refusals = 0

    # ---- life cycle ---------------------------------------------------------------------------------
    def start(self, timeout_s: float = 60.0) -> RobotServer:
        self._thread = threading.Thread(target=self.serve_forever, name="robot-server", daemon=True)
        self._thread.start()
        if not self._ready_event.wait(timeout_s):
            raise RuntimeError(f"robot server did not start within {timeout_s:g} s")
        if self._startup_error is not None:
            raise RuntimeError(f"robot server failed to start: {self._startup_error}") from self._startup_error
        return self

    def shutdown(self, timeout_s: float = 10.0) -> None:
        self._stop_event.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def __enter__(self) -> RobotServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def serve_forever(self) -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        authenticator = None
        try:
            try:
                if self.curve is not None:
                    authenticator = serve_with(ctx, sock, self.curve)
                sock.linger = 0
                sock.setsockopt(zmq.MAXMSGSIZE, 4 * self.max_request_bytes)
                sock.setsockopt(zmq.RCVHWM, PEER_QUEUE)  # per peer: a flooding client waits in its own TCP queue
                if ":" in self.host.strip("[]"):
                    sock.ipv6 = True
                host = self.host.strip("[]")
                addr = f"tcp://[{host}]" if ":" in host else f"tcp://{host}"
                if self.requested_port == 0:
                    self.port = sock.bind_to_random_port(addr)
                else:
                    sock.bind(f"{addr}:{self.requested_port}")
                    self.port = self.requested_port
                b = self._backend_or_factory
                self.backend = b() if callable(b) and not hasattr(b, "act") else b
            except BaseException as e:
                self._startup_error = e
                self._ready_event.set()
                raise
            log.info(
                "robot server (%s backend, protocol v%d) listening on %s:%d, %s, watchdog %.2f s",
                self.backend.name, PROTOCOL_VERSION, self.host, self.port,
                " + ".join(k for k, on in (("CURVE encryption and client keys", self.curve), ("shared-secret HMAC", self.secret)) if on)
                or "no authentication (loopback only)", self.watchdog_s,
            )
            self._ready_event.set()
            poller = zmq.Poller()
            poller.register(sock, zmq.POLLIN)
            while not self._stop_event.is_set():
                if poller.poll(WATCHDOG_TICK_MS):
                    for _ in range(64):  # drain what is queued, watching the watchdog after every message
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(sock, frames)
                        self._check_watchdog()
                self._check_watchdog()
        finally:
            self._close_backend()
            sock.close(0)
            if authenticator is not None:
                authenticator.stop()
            ctx.term()
            log.info("robot server stopped (%s)", dict(self.stats))

    def _close_backend(self) -> None:
        if self.backend is None:
            return
        try:
            self.backend.stop()  # leave the arm holding still
        except Exception as e:  # noqa: BLE001
            log.warning("backend stop at shutdown failed: %s", e)
        try:
            self.backend.close()
        except Exception as e:  # noqa: BLE001
            log.warning("backend close failed: %s", e)

    # ---- one message --------------------------------------------------------------------------------
    def _handle(self, sock: zmq.Socket, frames: list[zmq.Frame]) -> None:
        ident = frames[0].bytes
        if len(frames) == 3 and len(frames[1]) == 0:
            head, payload = [ident, b""], frames[2]  # a REQ client, or a DEALER imitating one
        elif len(frames) == 2:
            head, payload = [ident], frames[1]
        else:
            self.stats["bad_framing"] += 1
            self._log_refusal(None, f"message of {len(frames)} frames")
            sock.send_multipart([ident, b"", encode_reply(0, self.server_id, error=("bad_message", "expected one payload frame"))])
            return
        try:
            peer = payload.get("Peer-Address")
        except Exception:  # noqa: BLE001 - not every transport/libzmq knows it
            peer = None
        reply = self._process(payload.bytes, peer)
        sock.send_multipart([*head, reply])

    def _process(self, data: bytes, peer: str | None) -> bytes:
        self.stats["messages"] += 1
        try:
            body, auth = decode_request_envelope(data, self.max_request_bytes)
        except RobotProtocolError as e:
            self.stats[e.code] += 1
            self._log_refusal(peer, e.message)
            return encode_reply(0, self.server_id, error=(e.code, e.message))
        nonce = None
        if self.secret is not None:
            why = verify_request(self.secret, body, auth, self.guard)
            if why is not None:
                self.stats["unauthorized"] += 1
                self._log_refusal(peer, f"unauthenticated request refused: {why}")
                return encode_reply(0, self.server_id, error=("unauthorized", f"request refused: {why}"))
            nonce = auth["nonce"]
        try:
            req = parse_request_body(body)
        except RobotProtocolError as e:
            self.stats[e.code] += 1
            self._log_refusal(peer, e.message)
            return encode_reply(0, self.server_id, error=(e.code, e.message), secret=self.secret, nonce=nonce)
        if self.secret is not None and (why := signed_for(auth, self.server_id, req["type"])) is not None:
            self.stats["stale_server"] += 1
            self._log_refusal(peer, f"{req['type']} refused: {why}")
            return encode_reply(req["id"], self.server_id, error=("stale_server", why), secret=self.secret, nonce=nonce)
        result, error = self._dispatch(req)
        self.stats[req["type"] if error is None else f"{req['type']}:{error[0]}"] += 1
        reply = encode_reply(req["id"], self.server_id, result, error, secret=self.secret, nonce=nonce)
        if len(reply) > self.max_reply_bytes:
            reply = encode_reply(
                req["id"], self.server_id, error=("reply_too_large", f"reply of {len(reply)} bytes exceeds {self.max_reply_bytes}"),
                secret=self.secret, nonce=nonce,
            )
        return reply

    def _log_refusal(self, peer: str | None, what: str) -> None:
        """Log every refusal, at most 10 a second (a flood of garbage must not flood the log)."""
        now = time.monotonic()
        if now - self._refusal_window >= 1.0:
            if self._suppressed_refusals:
                log.warning("%d more refused messages were not logged", self._suppressed_refusals)
            self._refusal_window, self._refusals_logged, self._suppressed_refusals = now, 0, 0
        if self._refusals_logged < 10:
            self._refusals_logged += 1
            log.warning("refused a message from %s: %s", peer or "unknown peer", what)
        else:
            self._suppressed_refusals += 1

    # ---- requests -----------------------------------------------------------------------------------
    def _dispatch(self, req: dict) -> tuple[dict | None, tuple[str, str] | None]:
        t, args, sid = req["type"], req["args"], req["sid"]
        now = time.monotonic()
        if sid == self._controller:
            self._last_contact = now
        if t in CONTROL and (refusal := self._lease(sid, t, args["takeover"], now)) is not None:
            return None, refusal
        backend = self.backend
        try:
            if t == "ping":
                return {"time": time.time(), "halted": self._halted}, None
            if t == "hello":
                if args["version"] != PROTOCOL_VERSION:
                    return None, ("unsupported_version", f"client speaks protocol {args['version']!r}, server {PROTOCOL_VERSION}")
                if args["client"]:
                    log.info("hello from %s (session %s)", args["client"], sid[:8])
                return {
                    "server": "robot-server", "version": PROTOCOL_VERSION, "server_id": self.server_id,
                    "backend": backend.describe(), "watchdog_s": self.watchdog_s, "limits": self.safety.describe(),
                    "authenticated": self.secret is not None, "encrypted": self.curve is not None,
                    "max_request_bytes": self.max_request_bytes,
                    "max_reply_bytes": self.max_reply_bytes,
                }, None
            if t == "observe":
                return {"obs": encode_observation(backend.observe())}, None
            if t == "act":
                if self._halted:
                    return None, ("stopped", f"the arm is stopped ({self._halted}); call reset() to start a new episode")
                if not self._episode_ready:
                    return None, ("not_ready", "no episode: call reset() before act()")
                before = backend.current_state()
                if (refusal := self._check_motion(backend, *(self._last_step or (None, None)), before, tracking=False)) is not None:
                    return None, refusal  # the previous, asynchronous step went wrong
                safe, report = self.safety.filter(args["action"], before)
                sent = np.asarray(backend.act(safe), dtype=np.float64)
                self._armed = True
                self._last_contact = time.monotonic()
                if backend.asynchronous:
                    self._last_step = (before, sent)
                elif (refusal := self._check_motion(backend, before, sent, backend.current_state())) is not None:
                    return None, refusal
                return {"action": sent, "clamped": bool(report.clamped), "notes": list(report.notes)}, None
            if t == "reset":
                self._armed, self._last_step = False, None
                obs = backend.reset(seed=args["seed"], episode=args["episode"], task=args["task"])
                self._halted, self._episode_ready = None, True
                self._last_contact = time.monotonic()
                episode = backend.episode_json() if isinstance(backend, SimulatedScene) else None
                return {"obs": encode_observation(obs), "episode": episode}, None
            if t == "stop":
                self._armed = False
                backend.stop()
                self._halted = "stop requested"
                log.info("stop requested by session %s", sid[:8])
                return {}, None
            if t == "release":
                held = sid == self._controller
                if held:
                    self._controller = None
                    log.info("session %s released the arm", sid[:8])
                return {"released": held}, None
            if t == "goal_image":
                if not isinstance(backend, SimulatedScene):
                    return None, ("unsupported", f"the {backend.name} backend cannot render a goal image; take a goal picture instead")
                return {"image": backend.goal_image()}, None
        except (ValueError, TypeError, KeyError) as e:
            log.warning("%s refused: %s", t, e)
            return None, ("bad_request", f"{type(e).__name__}: {e}")
        except NotImplementedError as e:
            return None, ("unsupported", str(e))
        except Exception as e:
            log.exception("%s failed in the %s backend", t, backend.name)
            if t == "act":
                self._armed = False
            return None, ("backend_error", f"{type(e).__name__}: {e}")
        return None, ("unknown_type", t)  # unreachable: parse_request_body checked the type

    def _check_motion(self, backend, before, sent, after, tracking: bool = True) -> tuple[str, str] | None:
        """Hold the arm and say why if the measured step from `before` (None: nothing to check) broke a limit."""
        if before is None:
            return None
        why = motion_violation(self.safety.limits, self.motion_tolerance, before, sent, after, tracking)
        if why is None:
            return None
        self._armed, self._last_step = False, None
        self._halted = f"motion check: {why}"
        self.stats["motion_limit"] += 1
        log.error("%s; stopping the arm", self._halted)
        backend.stop()
        return "motion_limit", f"{self._halted}; the arm is held: call reset() to start a new episode"

    def _lease(self, sid: str, t: str, takeover: bool, now: float) -> tuple[str, str] | None:
        """None if session `sid` may send the command `t` (taking the free arm with a reset, or any arm with a
        takeover); else the refusal. A lease whose holder has been silent for `watchdog_s` is free."""
        holder = self._controller
        if holder is not None and holder != sid and self.watchdog_s > 0 and now - self._last_contact > self.watchdog_s:
            log.info("the lease of session %s ended: silent for %.2f s", holder[:8], now - self._last_contact)
            holder = self._controller = None
        if not takeover and sid in self._taken_from:
            return "taken_over", self._taken_from.pop(sid)
        if holder == sid:
            return None
        if takeover:
            if holder is not None:
                log.warning("session %s took over the arm from session %s (%s)", sid[:8], holder[:8], t)
                self._taken_from[holder] = f"session {sid[:8]} took over the arm; send reset with takeover to take it back"
            self._taken_from.pop(sid, None)
        elif holder is not None:
            return "busy", (
                f"the arm is controlled by session {holder[:8]} (last request {now - self._last_contact:.1f} s ago; its lease ends "
                f"when it releases the arm{f' or after {self.watchdog_s:g} s of silence' if self.watchdog_s > 0 else ''}); "
                f"send {t} with takeover to take the arm over"
            )
        elif t == "act" and self._halted:
            return "stopped", f"the arm is stopped ({self._halted}); call reset() to start a new episode"
        elif t == "act":
            return "not_ready", "no session controls the arm: call reset() to take it before act()"
        elif t == "stop":
            return None  # stopping a free arm takes nothing
        self._controller, self._last_contact = sid, now
        return None

    def _check_watchdog(self) -> None:
        if not self._armed or self.watchdog_s <= 0:
            return
        silent = time.monotonic() - self._last_contact
        if silent > self.watchdog_s:
            self._armed = False
            self._halted = f"watchdog: no request from the controlling client for {silent:.2f} s (limit {self.watchdog_s:g} s)"
            self._controller = None  # the lease ends with the watchdog
            self.stats["watchdog"] += 1
            log.warning("%s; stopping the arm", self._halted)
            try:
                self.backend.stop()
            except Exception:
                log.exception("backend stop by the watchdog failed")
            self.watchdog_stops.append(time.monotonic() - self._last_contact)
