"""The robot server's wire protocol: versioned request/reply messages, msgpack-encoded, over ZeroMQ.

One ZeroMQ message (one frame after the routing envelope) carries one *envelope*, a msgpack map:

    request  {"p": "vjepa-robot", "v": 1, "body": <bin>, "auth": {"ts": float, "nonce": <bin 16>, "srv": str, "mac": <bin 32>}}
    reply    {"p": "vjepa-robot", "v": 1, "body": <bin>, "mac": <bin 32>}

"auth" (request) and "mac" (reply) are present only when a shared secret is configured. The body is itself
msgpack, so the MAC covers exactly the bytes that were sent:

    request body  {"type": str, "id": int, "sid": str, "args": {...}}
    reply body    {"id": int, "ok": true, "result": {...}, "server": str}
                  {"id": int, "ok": false, "error": {"code": str, "message": str}, "server": str}

`id` pairs a reply with its request; `sid` names the client session (a client keeps it across socket
re-creations; the server's watchdog follows the session that controls the arm); `server` is a random token
per server process, so a client notices a restarted server.

Arrays travel as msgpack extension type 1 whose payload is msgpack `[dtype, shape, raw bytes]` (little-endian,
C order, a small whitelist of dtypes). Decoding is bounded: a size cap on the whole message and on every
string/bin/array/map inside it, and arrays whose byte count must match dtype x shape.

Authentication (HMAC-SHA256 with a shared secret): the request MAC covers a domain tag, the timestamp, the
nonce, the server instance `srv` and the body; the server refuses a timestamp outside +-max_clock_skew_s and a
nonce it has seen within that window (replays). `srv` is the `server` token of the process the request is
meant for (learnt from `hello`, which alone may leave it empty): a request signed for one server process is
refused by every other one with code "stale_server", so a request captured before a restart cannot be
replayed to the restarted server, whose nonce memory starts empty. The reply MAC covers another tag, the
request's nonce and the reply body, so a client knows the reply comes from a server holding the secret and
answers *its* request.

Version rule: "p" and "v" keep their meaning forever; a server answers a request of another major version
with an error reply of code "unsupported_version" encoded in version 1's envelope.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import os
import secrets
import stat
import struct
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from vjepa_planning.robot_drivers.base import STATE_DIM, Observation

log = logging.getLogger(__name__)

PROTOCOL_NAME = "vjepa-robot"
PROTOCOL_VERSION = 1
DEFAULT_PORT = 5555
MAX_REQUEST_BYTES = 1 << 20  # requests are small: an action, a seed, an episode spec
MAX_REPLY_BYTES = 32 << 20  # replies carry images
SECRET_ENV = "ROBOT_SERVER_SECRET"
MIN_SECRET_BYTES = 16
NONCE_BYTES = 16
ARRAY_EXT = 1
MAX_ARRAY_NDIM = 4

REQUEST_TYPES = ("hello", "ping", "observe", "act", "reset", "stop", "goal_image", "release")
# Safe to resend after a time-out: repeating them changes nothing on the robot. `act` and `reset` are not.
IDEMPOTENT = frozenset({"hello", "ping", "observe", "stop", "goal_image", "release"})
# Requests that move or command the arm: only the session holding the controller lease may send them.
CONTROL = frozenset({"act", "reset", "stop"})
UNBOUND = frozenset({"hello"})  # the only request that may be signed before the client knows the server's token
MAX_SERVER_ID_CHARS = 32

_ALLOWED_DTYPES = {np.dtype(t).str: np.dtype(t) for t in ("bool", "uint8", "uint16", "int32", "int64", "float32", "float64")}
_REQ_TAG = b"vjepa-robot/1 request\x00"
_REP_TAG = b"vjepa-robot/1 reply\x00"


# ---- errors -------------------------------------------------------------------------------------------


class RobotProtocolError(ValueError):
    """A message that does not follow the protocol. `code` is the error code a server replies with."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class RobotConnectionError(ConnectionError):
    """The robot server could not be reached, did not answer in time, or answered something unusable."""

    def __init__(self, endpoint: str, what: str):
        super().__init__(f"robot server {endpoint}: {what}")
        self.endpoint, self.what = endpoint, what


class RemoteRobotError(RuntimeError):
    """The robot server answered the request with an error (the connection itself is fine)."""

    def __init__(self, endpoint: str, request: str, code: str, message: str):
        super().__init__(f"robot server {endpoint} refused {request!r}: [{code}] {message}")
        self.endpoint, self.request, self.code, self.message = endpoint, request, code, message


# ---- values: arrays and msgpack -----------------------------------------------------------------------


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return pack_array(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__} in a robot-server message")


def pack_array(a: np.ndarray) -> msgpack.ExtType:
    a = np.asarray(a)
    dtype = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    if dtype.str not in _ALLOWED_DTYPES:
        raise TypeError(f"array dtype {a.dtype} is not allowed on the wire (use one of {sorted(_ALLOWED_DTYPES)})")
    if a.ndim > MAX_ARRAY_NDIM:
        raise TypeError(f"arrays of more than {MAX_ARRAY_NDIM} dimensions are not allowed on the wire")
    a = np.asarray(a, dtype=dtype, order="C")  # (ascontiguousarray would turn 0-d into 1-d)
    payload = msgpack.packb([dtype.str, list(a.shape), a.tobytes()], use_bin_type=True)
    return msgpack.ExtType(ARRAY_EXT, payload)


def _ext_hook(code: int, data: bytes) -> np.ndarray:
    if code != ARRAY_EXT:
        raise RobotProtocolError("bad_message", f"unknown msgpack extension type {code}")
    try:
        dtype_str, shape, raw = msgpack.unpackb(data, raw=False, use_list=True, max_str_len=16, max_array_len=16)
    except Exception as e:  # noqa: BLE001 - any decoding failure is a malformed message
        raise RobotProtocolError("bad_message", f"malformed array: {e}") from None
    if not isinstance(dtype_str, str) or dtype_str not in _ALLOWED_DTYPES:
        raise RobotProtocolError("bad_message", f"array dtype {dtype_str!r} not allowed")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_ARRAY_NDIM
        or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**31 for n in shape)
    ):
        raise RobotProtocolError("bad_message", f"bad array shape {shape!r}")
    if not isinstance(raw, bytes):
        raise RobotProtocolError("bad_message", "array data must be bytes")
    dtype = _ALLOWED_DTYPES[dtype_str]
    if math.prod(shape) * dtype.itemsize != len(raw):
        raise RobotProtocolError("bad_message", f"array of {dtype_str} {shape} needs {math.prod(shape) * dtype.itemsize} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(tuple(shape)).copy()


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default, use_bin_type=True)


def unpackb(data: bytes, max_bytes: int) -> Any:
    """Decode msgpack with every inner length bounded by the message cap; any failure is a RobotProtocolError."""
    if len(data) > max_bytes:
        raise RobotProtocolError("too_large", f"message of {len(data)} bytes exceeds the cap of {max_bytes}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_ext_hook,
            max_str_len=min(len(data), 1 << 20),
            max_bin_len=len(data),
            max_array_len=min(len(data), 1 << 16),
            max_map_len=min(len(data), 1 << 12),
            max_ext_len=len(data),
        )
    except RobotProtocolError:
        raise
    except Exception as e:  # noqa: BLE001 - msgpack raises several types for garbage input
        raise RobotProtocolError("bad_message", f"undecodable msgpack ({type(e).__name__}: {e})") from None


# ---- observations -------------------------------------------------------------------------------------


def encode_observation(obs: Observation) -> dict:
    return {"image": obs.image, "state": obs.state, "timestamp": float(obs.timestamp), "info": _plain(obs.info)}


def decode_observation(d: Any) -> Observation:
    if not isinstance(d, dict) or set(d) != {"image", "state", "timestamp", "info"}:
        raise RobotProtocolError("bad_reply", "observation must be a map of image, state, timestamp, info")
    image, state = d["image"], d["state"]
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise RobotProtocolError("bad_reply", "observation image must be a uint8 [H, W, 3] array")
    if not isinstance(state, np.ndarray) or state.shape != (STATE_DIM,) or state.dtype.kind != "f":
        raise RobotProtocolError("bad_reply", f"observation state must be {STATE_DIM} floats")
    if not isinstance(d["timestamp"], (int, float)) or not isinstance(d["info"], dict):
        raise RobotProtocolError("bad_reply", "observation timestamp must be a number and info a map")
    return Observation(image=image, state=state.astype(np.float64), timestamp=float(d["timestamp"]), info=d["info"])


def _plain(value: Any, depth: int = 0) -> Any:
    """Observation.info as wire-safe values: maps with str keys, lists, scalars, arrays; anything else as str."""
    if depth > 8:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, np.ndarray):
        return value if value.dtype.str in _ALLOWED_DTYPES or value.dtype.newbyteorder("<").str in _ALLOWED_DTYPES else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    return repr(value)


# ---- shared secret ------------------------------------------------------------------------------------


def load_secret(secret_file: str | os.PathLike | None = None, env_var: str | None = SECRET_ENV) -> bytes | None:
    """The shared secret from `secret_file` (preferred) or the environment variable `env_var`; None if neither.

    The secret never comes from the command line, so it stays out of shell history and `ps`.
    """
    raw: str | None = None
    where = ""
    if secret_file:
        path = Path(secret_file).expanduser()
        try:
            mode = path.stat().st_mode
            raw = path.read_text().strip()
        except OSError as e:
            raise ValueError(f"cannot read the shared secret file {path}: {e}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("shared secret file %s is readable by other users; chmod 600 it", path)
        where = f"file {path}"
    elif env_var and os.environ.get(env_var):
        raw, where = os.environ[env_var].strip(), f"${env_var}"
    if raw is None:
        return None
    secret = raw.encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the shared secret from {where} is {len(secret)} bytes; use at least {MIN_SECRET_BYTES} (e.g. 64 hex digits)")
    return secret


def new_secret() -> str:
    return secrets.token_hex(32)


def write_secret_file(path: str | os.PathLike) -> Path:
    """Write a fresh random secret readable by the owner only (0600); refuses to overwrite a file."""
    path = Path(path).expanduser()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new_secret() + "\n")
    return path


def _request_mac(secret: bytes, ts: float, nonce: bytes, srv: str, body: bytes) -> bytes:
    bound = srv.encode()
    msg = _REQ_TAG + struct.pack("<d", ts) + nonce + struct.pack("<B", len(bound)) + bound + body
    return hmac.new(secret, msg, hashlib.sha256).digest()


def _reply_mac(secret: bytes, nonce: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _REP_TAG + nonce + body, hashlib.sha256).digest()


class ReplayGuard:
    """Remembers authenticated nonces for the clock-skew window; a repeated nonce is a replay."""

    def __init__(self, max_clock_skew_s: float = 30.0, max_entries: int = 1_000_000):
        self.max_clock_skew_s, self.max_entries = float(max_clock_skew_s), max_entries
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def check(self, ts: float, nonce: bytes, now: float | None = None) -> str | None:
        """None if fresh (and remembers it); otherwise why it is refused."""
        now = time.time() if now is None else now
        while self._seen and next(iter(self._seen.values())) < now - 2 * self.max_clock_skew_s:
            self._seen.popitem(last=False)
        if not math.isfinite(ts) or abs(now - ts) > self.max_clock_skew_s:
            return f"timestamp {ts:.3f} is {now - ts:+.1f} s from the server clock (allowed +-{self.max_clock_skew_s:g} s; sync clocks with NTP)"
        if nonce in self._seen:
            return "replayed nonce"
        if len(self._seen) >= self.max_entries:
            return "too many requests in the replay window"
        self._seen[nonce] = now
        return None


# ---- envelopes ----------------------------------------------------------------------------------------


def encode_request(
    type_: str, args: Mapping[str, Any], req_id: int, sid: str, secret: bytes | None = None, *, server_id: str = "",
    version: int = PROTOCOL_VERSION,
) -> tuple[bytes, bytes]:
    """(envelope bytes, nonce). The nonce is what the reply's MAC is bound to (random even without a secret).
    With a secret the request is signed for the server process `server_id` (the `server` of its replies)."""
    body = packb({"type": type_, "id": int(req_id), "sid": sid, "args": dict(args)})
    nonce = os.urandom(NONCE_BYTES)
    env: dict[str, Any] = {"p": PROTOCOL_NAME, "v": version, "body": body}
    if secret is not None:
        ts = time.time()
        env["auth"] = {"ts": ts, "nonce": nonce, "srv": server_id, "mac": _request_mac(secret, ts, nonce, server_id, body)}
    return packb(env), nonce


def decode_request_envelope(data: bytes, max_bytes: int = MAX_REQUEST_BYTES) -> tuple[bytes, dict | None]:
    """(body bytes, auth map or None); raises RobotProtocolError for anything malformed or of another version."""
    env = unpackb(data, max_bytes)
    if not isinstance(env, dict) or env.get("p") != PROTOCOL_NAME:
        raise RobotProtocolError("bad_message", f"not a {PROTOCOL_NAME} message")
    v = env.get("v")
    if v != PROTOCOL_VERSION:
        raise RobotProtocolError("unsupported_version", f"protocol version {v!r}; this server speaks {PROTOCOL_VERSION}")
    if not set(env) <= {"p", "v", "body", "auth"} or not isinstance(env.get("body"), bytes):
        raise RobotProtocolError("bad_message", "envelope must hold p, v, body (bin) and optionally auth")
    auth = env.get("auth")
    if auth is not None and (
        not isinstance(auth, dict)
        or set(auth) != {"ts", "nonce", "srv", "mac"}
        or not isinstance(auth["ts"], float)
        or not isinstance(auth["srv"], str)
        or len(auth["srv"]) > MAX_SERVER_ID_CHARS
        or not isinstance(auth["nonce"], bytes)
        or len(auth["nonce"]) != NONCE_BYTES
        or not isinstance(auth["mac"], bytes)
        or len(auth["mac"]) != 32
    ):
        raise RobotProtocolError("unauthorized", "malformed auth block")
    return env["body"], auth


def verify_request(secret: bytes, body: bytes, auth: dict | None, guard: ReplayGuard) -> str | None:
    """None if the request is authentic and fresh, else the reason it is refused. Whether it was signed for
    this server process is the caller's check (`auth["srv"]`, see `signed_for`), made after this one."""
    if auth is None:
        return "no credentials (the server requires the shared secret)"
    if not hmac.compare_digest(_request_mac(secret, auth["ts"], auth["nonce"], auth["srv"], body), auth["mac"]):
        return "bad MAC (wrong shared secret or altered message)"
    return guard.check(auth["ts"], auth["nonce"])


def signed_for(auth: dict, server_id: str, type_: str) -> str | None:
    """None if an authentic request was signed for the server process `server_id`, else why it is stale."""
    srv = auth["srv"]
    if srv == server_id or (srv == "" and type_ in UNBOUND):
        return None
    if srv == "":
        return f"{type_!r} was not signed for this server process; send hello first and sign with its server id"
    return f"signed for server process {srv!r}, this is {server_id!r} (the server restarted; send hello again)"


def parse_request_body(body: bytes) -> dict:
    """The request body checked against the schema of its type (args normalised, e.g. action -> float64[7])."""
    msg = unpackb(body, len(body))
    if not isinstance(msg, dict) or not {"type", "id", "args"} <= set(msg) or not set(msg) <= {"type", "id", "sid", "args"}:
        raise RobotProtocolError("bad_request", "request body must be a map of type, id, sid, args")
    t, rid, sid, args = msg["type"], msg["id"], msg.get("sid", ""), msg["args"]
    if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid < 2**63:
        raise RobotProtocolError("bad_request", "id must be a non-negative integer")
    if not isinstance(sid, str) or len(sid) > 64:
        raise RobotProtocolError("bad_request", "sid must be a string of at most 64 characters")
    if not isinstance(t, str) or t not in REQUEST_TYPES:
        raise RobotProtocolError("unknown_type", f"unknown request type {t!r}; known: {', '.join(REQUEST_TYPES)}")
    if not isinstance(args, dict):
        raise RobotProtocolError("bad_request", "args must be a map")
    return {"type": t, "id": rid, "sid": sid, "args": _check_args(t, args)}


def _check_args(t: str, args: dict) -> dict:
    allowed = {"hello": {"client", "version"}, "act": {"action", "takeover"}, "reset": {"seed", "episode", "task", "takeover"},
               "stop": {"takeover"}}.get(t, set())
    unknown = set(args) - allowed
    if unknown:
        raise RobotProtocolError("bad_request", f"{t}: unknown arguments {sorted(unknown)}")
    out: dict[str, Any] = {}
    if t in CONTROL:
        takeover = args.get("takeover", False)
        if not isinstance(takeover, bool):
            raise RobotProtocolError("bad_request", f"{t}: takeover must be true or false")
        out["takeover"] = takeover
    if t == "hello":
        out["client"] = str(args.get("client", ""))[:200]
        out["version"] = args.get("version", PROTOCOL_VERSION)
    elif t == "act":
        if "action" not in args:
            raise RobotProtocolError("bad_request", "act needs an action")
        a = args["action"]
        if isinstance(a, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in a):
            a = np.asarray(a, dtype=np.float64)
        if not isinstance(a, np.ndarray) or a.shape != (7,) or a.dtype.kind not in "fiu":
            raise RobotProtocolError("bad_request", "act: action must be 7 numbers")
        out["action"] = a.astype(np.float64)  # non-finite values are the safety layer's business (hold still)
    elif t == "reset":
        seed, episode, task = args.get("seed"), args.get("episode"), args.get("task")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32):
            raise RobotProtocolError("bad_request", "reset: seed must be an integer in [0, 2**32) or nil")
        if episode is not None and (not isinstance(episode, str) or len(episode) > 65536):
            raise RobotProtocolError("bad_request", "reset: episode must be the episode spec as a JSON string (<= 64 KiB)")
        if task is not None and (not isinstance(task, str) or len(task) > 64):
            raise RobotProtocolError("bad_request", "reset: task must be a short string")
        out.update(seed=seed, episode=episode, task=task)
    return out


def encode_reply(
    req_id: int, server_id: str, result: Mapping | None = None, error: tuple[str, str] | None = None,
    secret: bytes | None = None, nonce: bytes | None = None,
) -> bytes:
    body_d: dict[str, Any] = {"id": int(req_id), "ok": error is None, "server": server_id}
    if error is None:
        body_d["result"] = dict(result or {})
    else:
        body_d["error"] = {"code": error[0], "message": error[1]}
    body = packb(body_d)
    env: dict[str, Any] = {"p": PROTOCOL_NAME, "v": PROTOCOL_VERSION, "body": body}
    if secret is not None and nonce is not None:
        env["mac"] = _reply_mac(secret, nonce, body)
    return packb(env)


def decode_reply(data: bytes, secret: bytes | None, nonce: bytes, max_bytes: int = MAX_REPLY_BYTES) -> dict:
    """The reply body map {id, ok, server, result | error}; raises RobotProtocolError when malformed/unauthentic."""
    env = unpackb(data, max_bytes)
    if not isinstance(env, dict) or env.get("p") != PROTOCOL_NAME or not isinstance(env.get("body"), bytes):
        raise RobotProtocolError("bad_reply", f"not a {PROTOCOL_NAME} reply")
    if env.get("v") != PROTOCOL_VERSION:
        raise RobotProtocolError("unsupported_version", f"server speaks protocol version {env.get('v')!r}, this client {PROTOCOL_VERSION}")
    body = env["body"]
    msg = unpackb(body, max_bytes)
    if not isinstance(msg, dict) or not isinstance(msg.get("ok"), bool) or not isinstance(msg.get("id"), int):
        raise RobotProtocolError("bad_reply", "reply body must hold id and ok")
    if secret is not None:
        mac = env.get("mac")
        if mac is None:
            # A server that refused our credentials answers without a MAC: pass its reason on, unauthenticated.
            if not msg["ok"] and isinstance(msg.get("error"), dict) and msg["error"].get("code") == "unauthorized":
                return msg
            raise RobotProtocolError("bad_reply", "reply carries no MAC although a shared secret is configured")
        if not isinstance(mac, bytes) or not hmac.compare_digest(_reply_mac(secret, nonce, body), mac):
            raise RobotProtocolError("bad_reply", "reply MAC does not verify (wrong shared secret, or not our server)")
    if msg["ok"] and not isinstance(msg.get("result"), dict):
        raise RobotProtocolError("bad_reply", "ok reply without a result map")
    if not msg["ok"] and not (isinstance(msg.get("error"), dict) and isinstance(msg["error"].get("code"), str)):
        raise RobotProtocolError("bad_reply", "error reply without an error code")
    return msg


# ---- addresses ----------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def endpoint(host: str, port: int) -> str:
    h = host.strip("[]")
    return f"tcp://[{h}]:{port}" if ":" in h else f"tcp://{h}:{port}"
