"""ZeroMQ CURVE for the robot server: encrypted traffic, and only clients whose public key the server holds.

    robot-server --new-keys ~/.config/vjepa/curve     # a server key pair and one client key pair

writes, in that directory (secret files 0600):

    server.key, server.key_secret      the server's pair: server.key_secret stays on the robot computer
    client.key, client.key_secret      a client's pair: copy client.key_secret and server.key to the workstation
    authorized_clients/client.key      the public keys the server accepts (add one per workstation)

Keys are ZeroMQ's Z85 certificate files (`zmq.auth`). The server runs a ZAP authenticator on its context
that lets in exactly the keys in `authorized_clients`; a client with any other key (or none) never gets a
connection, so its requests never reach the request loop. Every frame is encrypted (CurveZMQ, per-connection
session keys), so a captured message neither decodes nor replays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


@dataclass(frozen=True)
class ServerKeys:
    public: bytes
    secret: bytes
    authorized_clients: Path  # a directory of client public keys (*.key)


@dataclass(frozen=True)
class ClientKeys:
    server_public: bytes
    public: bytes
    secret: bytes


def _available() -> None:
    if not zmq.has("curve"):
        raise ValueError(f"this libzmq ({zmq.zmq_version()}) was built without CURVE; install pyzmq's wheel, which has it")


def _load(path: str | os.PathLike, want_secret: bool, what: str) -> tuple[bytes, bytes | None]:
    p = Path(path).expanduser()
    try:
        public, secret = zmq.auth.load_certificate(p)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the {what} {p}: {e}") from None
    if want_secret and not secret:
        raise ValueError(f"the {what} {p} holds no secret key: give the .key_secret file, not the public .key")
    return public, secret


def load_server_keys(secret_key_file: str | os.PathLike, authorized_clients: str | os.PathLike) -> ServerKeys:
    _available()
    public, secret = _load(secret_key_file, True, "server CURVE key")
    clients = Path(authorized_clients).expanduser()
    if not clients.is_dir() or not any(clients.glob("*.key")):
        raise ValueError(f"authorized_clients {clients} must be a directory holding client public keys (*.key)")
    return ServerKeys(public, secret, clients)


def load_client_keys(server_public_key_file: str | os.PathLike, client_secret_key_file: str | os.PathLike) -> ClientKeys:
    _available()
    server_public, _ = _load(server_public_key_file, False, "server public key")
    public, secret = _load(client_secret_key_file, True, "client CURVE key")
    return ClientKeys(server_public, public, secret)


def new_keys(directory: str | os.PathLike) -> Path:
    """Write a server and a client key pair (see the module docstring); refuses a directory with keys in it."""
    _available()
    d = Path(directory).expanduser()
    if (d / "server.key_secret").exists() or (d / "client.key_secret").exists():
        raise ValueError(f"{d} already holds CURVE keys; refusing to overwrite them")
    d.mkdir(parents=True, exist_ok=True)
    for name in ("server", "client"):
        public_file, secret_file = zmq.auth.create_certificates(d, name)
        os.chmod(secret_file, 0o600)
    clients = d / "authorized_clients"
    clients.mkdir(exist_ok=True)
    (clients / "client.key").write_bytes((d / "client.key").read_bytes())
    return d


def serve_with(ctx: zmq.Context, sock: zmq.Socket, keys: ServerKeys) -> ThreadAuthenticator:
    """Make `sock` a CURVE server that admits the authorized client keys; returns the authenticator to stop."""
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys.authorized_clients))
    sock.curve_server = True
    sock.curve_publickey, sock.curve_secretkey = keys.public, keys.secret
    return auth


def connect_with(sock: zmq.Socket, keys: ClientKeys) -> None:
    sock.curve_serverkey = keys.server_public
    sock.curve_publickey, sock.curve_secretkey = keys.public, keys.secret
