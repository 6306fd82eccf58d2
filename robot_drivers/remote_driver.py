"""The client side of the robot server: a `RobotDriver` whose robot sits behind `robot-server` on the network.

    driver = RemoteDriver("10.0.0.2", 5555, secret_file="~/.config/vjepa/robot.secret")
    obs = driver.reset(); sent = driver.act(action); obs = driver.observe(); driver.stop()

Requests go out on a DEALER socket one at a time (REQ semantics) with a time-out each. On a time-out the
socket is thrown away and a fresh one connected (ZeroMQ's "lazy pirate"), so a late reply can never be taken
for the answer to a later request. Requests that are harmless to repeat (hello, ping, observe, stop,
goal_image) are retried `retries` times; `act` and `reset` never are (an act that did arrive must not run
twice), they raise `RobotConnectionError` naming the server and what happened.

A heartbeat thread pings the server every watchdog_s / 4 while the driver is open, so the server's watchdog
does not stop the arm while the planner thinks (seconds per step on a GPU); if this process dies, the pings
stop and the server stops the arm. Every reply names the server process; if it changes (the server was
restarted), `act`/`observe` raise until the next `reset()` — the old episode's state is gone. With a shared
secret every request is signed for that server process, so a restarted server refuses it ("stale_server"):
the driver then learns the new process and sends an idempotent request or a reset again.

The server leases the arm to one client session at a time: `reset()` takes a free arm, and another
session's commands are refused (`RemoteRobotError` code "busy") unless it asks for a takeover
(`reset(takeover=True)`, `stop(takeover=True)` or `RemoteDriver(..., takeover=True)` for every reset).
`close()` releases the arm.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import numpy as np
import zmq

from vjepa_planning.robot_drivers.base import ACTION_DIM, Observation
from vjepa_planning.robot_drivers.curve import ClientKeys, connect_with
from vjepa_planning.robot_drivers.safety import SafetyReport
from vjepa_planning.robot_drivers.protocol import (
    DEFAULT_PORT,
    IDEMPOTENT,
    MAX_REPLY_BYTES,
    PROTOCOL_VERSION,
    SECRET_ENV,
    RemoteRobotError,
    RobotConnectionError,
    RobotProtocolError,
    decode_observation,
    decode_reply,
    encode_request,
    endpoint,
    is_loopback,
    load_secret,
)

log = logging.getLogger(__name__)


class RemoteDriver:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        timeout_s: float = 5.0,
        reset_timeout_s: float = 60.0,
        retries: int = 2,
        secret: bytes | None = None,
        secret_file: str | None = None,
        secret_env: str | None = SECRET_ENV,
        seed: int | None = None,
        episode: Any = None,
        task: str | None = None,
        heartbeat: bool = True,
        expected_image_size: int | None = None,
        max_reply_bytes: int = MAX_REPLY_BYTES,
        client_name: str = "remote-driver",
        takeover: bool = False,
        curve: ClientKeys | None = None,
    ):
        self.host, self.port = host, int(port)
        self.endpoint = endpoint(host, self.port)
        self.timeout_s, self.reset_timeout_s, self.retries = float(timeout_s), float(reset_timeout_s), int(retries)
        self._secret = secret if secret is not None else load_secret(secret_file, secret_env)
        self.curve = curve
        if curve is None and not is_loopback(host):
            log.warning("connecting to %s without CURVE keys: a server bound off-loopback admits only clients with keys", self.endpoint)
        self.seed, self.task, self.takeover = seed, task, bool(takeover)
        self.episode = episode
        self.max_reply_bytes = int(max_reply_bytes)
        self._sid = uuid.uuid4().hex
        self._next_id = 1
        self._lock = threading.RLock()
        self._ctx = zmq.Context()
        self._sock: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None  # CURVE handshake failures, to name them on a time-out
        self._closed = False
        self._server_id: str | None = None
        self._episode_lost = False
        self._unreachable = False
        self._episode_json: str | None = None
        self.last_safety: SafetyReport | None = None  # the server's safety report of the last act
        self._new_socket()
        try:
            self.server_info = self.hello(client_name)
        except BaseException:
            self.close()
            raise
        size = self.server_info["backend"].get("image_size")
        if expected_image_size is not None and size is not None and int(size) != int(expected_image_size):
            log.warning("robot server renders %s px images, this config expects %s px", size, expected_image_size)
        self._hb_stop = threading.Event()
        self._hb_thread: threading.Thread | None = None
        watchdog = float(self.server_info.get("watchdog_s", 0.0))
        if heartbeat and watchdog > 0:
            self._hb_interval = watchdog / 4
            self._hb_thread = threading.Thread(target=self._heartbeat_loop, name="robot-heartbeat", daemon=True)
            self._hb_thread.start()

    # ---- RobotDriver ---------------------------------------------------------------------------------
    @property
    def step_budget(self) -> int | None:
        """The sim task's step budget, as the server's backend reports it (None for a real arm)."""
        budget = self.server_info["backend"].get("max_steps")
        return None if budget is None else int(budget)

    def reset(self, seed: int | None = None, episode: Any = None, task: str | None = None, takeover: bool | None = None) -> Observation:
        """Start an episode, taking the arm. `episode` (sim backend: an EpisodeSpec or its JSON) reproduces a
        start and goal; `takeover` takes the arm from another client session (default: the driver's setting)."""
        episode = self.episode if episode is None else episode
        if episode is not None and not isinstance(episode, str):
            episode = episode.to_json()
        args = {"seed": self.seed if seed is None else int(seed), "episode": episode, "task": task or self.task,
                "takeover": self.takeover if takeover is None else bool(takeover)}
        result = self._request("reset", args, timeout_s=self.reset_timeout_s)
        self._episode_lost = False
        self._episode_json = result.get("episode")
        return decode_observation(result.get("obs"))

    def observe(self) -> Observation:
        return decode_observation(self._request("observe", {}).get("obs"))

    def act(self, action) -> np.ndarray:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"action must have shape ({ACTION_DIM},), got {action.shape}")
        result = self._request("act", {"action": action})
        sent = result.get("action")
        if not isinstance(sent, np.ndarray) or sent.shape != (ACTION_DIM,):
            raise RobotConnectionError(self.endpoint, "act reply lacks the action that was sent")
        self.last_safety = SafetyReport(clamped=bool(result.get("clamped")), notes=[str(n) for n in result.get("notes", [])])
        return sent.astype(np.float64)

    def stop(self, takeover: bool = False) -> None:
        """Stop the arm. Another session's arm only with `takeover` (which then makes this one its controller)."""
        self._request("stop", {"takeover": bool(takeover)})

    def release(self) -> bool:
        """Give up the arm (the server's controller lease); True if this session held it."""
        return bool(self._request("release", {}).get("released"))

    # ---- extras --------------------------------------------------------------------------------------
    def hello(self, client_name: str = "remote-driver") -> dict:
        return self._request("hello", {"client": client_name, "version": PROTOCOL_VERSION})

    def ping(self) -> float:
        """Round-trip time of one ping (s)."""
        t = time.perf_counter()
        self._request("ping", {})
        return time.perf_counter() - t

    def goal_image(self) -> np.ndarray:
        image = self._request("goal_image", {}).get("image")
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
            raise RobotConnectionError(self.endpoint, "goal_image reply lacks a uint8 image")
        return image

    @property
    def episode_spec(self):
        """The sim backend's episode spec of the current episode (None for a real arm)."""
        if self._episode_json is None:
            return None
        from vjepa_planning.robot_drivers.episode_spec import EpisodeSpec

        return EpisodeSpec.from_json(self._episode_json)

    def close(self) -> None:
        if getattr(self, "_hb_thread", None) is not None:
            self._hb_stop.set()
            self._hb_thread.join(timeout=2.0)
        if not self._closed and not self._unreachable and self._server_id is not None:
            try:  # best effort: a dead server's lease ends with its watchdog anyway
                self._request("release", {}, timeout_s=min(1.0, self.timeout_s), retries=0)
            except (RobotConnectionError, RemoteRobotError) as e:
                log.debug("release on close: %s", e)
        with self._lock:
            self._closed = True
            self._close_socket()
            self._ctx.term()

    def __enter__(self) -> RemoteDriver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- transport -----------------------------------------------------------------------------------
    def _close_socket(self) -> None:
        if self._monitor is not None:
            self._sock.disable_monitor()
            self._monitor.close(0)
            self._monitor = None
        if self._sock is not None:
            self._sock.close(0)  # drops the unanswered request with it
            self._sock = None

    def _new_socket(self) -> None:
        self._close_socket()
        sock = self._ctx.socket(zmq.DEALER)
        sock.linger = 0
        if self.curve is not None:
            connect_with(sock, self.curve)
            self._monitor = sock.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        sock.setsockopt(zmq.MAXMSGSIZE, self.max_reply_bytes)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        if ":" in self.host.strip("[]"):
            sock.ipv6 = True
        sock.connect(self.endpoint)
        self._sock = sock

    def _request(self, type_: str, args: dict, timeout_s: float | None = None, retries: int | None = None) -> dict:
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if retries is None:
            # Once the server has failed to answer, fail fast (one try) until it answers again: a caller's
            # clean-up (e.g. stop() in a `finally`) should not wait out every retry against a dead server.
            retries = self.retries if type_ in IDEMPOTENT and not self._unreachable else 0
        with self._lock:
            if self._closed:
                raise RobotConnectionError(self.endpoint, f"{type_!r} on a closed driver")
            for attempt in range(retries + 1):
                msg = self._exchange(type_, args, timeout_s)
                if msg is not None and not msg["ok"] and msg["error"].get("code") == "stale_server":
                    msg = self._rebind(type_, args, timeout_s, msg)
                if msg is not None:
                    self._unreachable = False
                    return self._result(type_, msg)
                if self._handshake_failed():
                    self._new_socket()
                    raise RobotConnectionError(
                        self.endpoint, f"the CURVE handshake failed ({type_!r} never reached the server): the server does not admit this "
                        "client's key (add its .key to the server's curve.authorized_clients), or curve.server_public_key is "
                        "not this server's key")
                self._new_socket()
                if attempt < retries:
                    log.warning("robot server %s: no reply to %r within %.1f s; retrying (%d/%d)", self.endpoint, type_, timeout_s, attempt + 1, retries)
            self._unreachable = True
            tries = f" ({retries + 1} tries)" if retries else ""
            raise RobotConnectionError(
                self.endpoint,
                f"no reply to {type_!r} within {timeout_s:g} s{tries}: is robot-server running there, reachable "
                "(host, port, firewall), and not stuck?"
                + (" The request was not retried: it may or may not have reached the arm." if type_ not in IDEMPOTENT else ""),
            )

    def _handshake_failed(self) -> bool:
        """Whether the CURVE handshake of the current socket was refused (events seen by its monitor)."""
        failed = False
        while self._monitor is not None and self._monitor.poll(0):
            self._monitor.recv_multipart()
            failed = True
        return failed

    def _rebind(self, type_: str, args: dict, timeout_s: float, msg: dict) -> dict | None:
        """The server refused a request signed for an earlier process of it (it restarted; its authenticated
        reply names the new one). Nothing ran: sign for the new process and send again, unless the request
        belongs to the old episode, which is gone."""
        log.warning("robot server %s restarted (process %s -> %s)", self.endpoint, self._server_id, msg["server"])
        self._server_id, self._episode_lost = msg["server"], True
        if type_ in ("act", "observe", "goal_image"):
            raise RobotConnectionError(self.endpoint, "the server was restarted since the last reset(); the episode is gone — call reset()")
        return self._exchange(type_, args, timeout_s)

    def _exchange(self, type_: str, args: dict, timeout_s: float) -> dict | None:
        """One send and the wait for its reply; None on time-out."""
        rid = self._next_id
        self._next_id += 1
        server_id = "" if type_ == "hello" or self._server_id is None else self._server_id
        data, nonce = encode_request(type_, args, rid, self._sid, self._secret, server_id=server_id)
        try:
            self._sock.send_multipart([b"", data], zmq.NOBLOCK)
        except zmq.Again:
            return None  # nothing connected and the queue is full: same as no reply
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not self._sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                continue
            frames = self._sock.recv_multipart()
            try:
                msg = decode_reply(frames[-1], self._secret, nonce, self.max_reply_bytes)
            except RobotProtocolError as e:
                raise RobotConnectionError(self.endpoint, f"unusable reply to {type_!r}: {e.message}") from None
            if msg["id"] not in (rid, 0):
                log.debug("discarding a stale reply %s (waiting for %s)", msg["id"], rid)
                continue
            return msg
        return None

    def _result(self, type_: str, msg: dict) -> dict:
        server = msg.get("server")
        if self._server_id is None or type_ in ("hello", "reset"):
            self._server_id = server
        elif server != self._server_id:
            log.warning("robot server %s restarted (process %s -> %s)", self.endpoint, self._server_id, server)
            self._server_id, self._episode_lost = server, True
        if self._episode_lost and type_ in ("act", "observe", "goal_image"):
            raise RobotConnectionError(self.endpoint, "the server was restarted since the last reset(); the episode is gone — call reset()")
        if not msg["ok"]:
            err = msg["error"]
            raise RemoteRobotError(self.endpoint, type_, str(err.get("code")), str(err.get("message", "")))
        return msg["result"]

    def _heartbeat_loop(self) -> None:
        while not self._hb_stop.wait(self._hb_interval):
            if not self._lock.acquire(blocking=False):
                continue  # a request is under way: that is contact enough
            try:
                if not self._closed:
                    self._request("ping", {}, timeout_s=max(self._hb_interval, 0.5), retries=0)
            except Exception as e:  # noqa: BLE001 - the next real request reports the problem
                log.debug("heartbeat: %s", e)
            finally:
                self._lock.release()
