"""The wire protocol on its own: arrays, observations, envelopes, authentication, schema checks, fuzzing."""

from __future__ import annotations

import os
import time

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vjepa_planning.robot_drivers.base import Observation
from vjepa_planning.robot_drivers.protocol import (
    MAX_REQUEST_BYTES,
    PROTOCOL_NAME,
    PROTOCOL_VERSION,
    ReplayGuard,
    RobotProtocolError,
    decode_observation,
    decode_reply,
    decode_request_envelope,
    encode_observation,
    encode_reply,
    encode_request,
    endpoint,
    is_loopback,
    load_secret,
    packb,
    parse_request_body,
    signed_for,
    unpackb,
    verify_request,
    write_secret_file,
)

SECRET = b"0123456789abcdef0123456789abcdef"
DTYPES = ["bool", "uint8", "uint16", "int32", "int64", "float32", "float64"]


# ---- arrays and observations --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=4, max_side=6)))
def test_array_round_trip(a):
    b = unpackb(packb({"a": a}), 1 << 20)["a"]
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(b, a)
    assert b.flags.writeable


def test_big_endian_and_non_contiguous_arrays_travel_as_little_endian_c_order():
    a = np.arange(12, dtype=">f8").reshape(3, 4)[:, ::2]
    b = unpackb(packb(a), 1 << 20)
    assert b.dtype == np.dtype("<f8")
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("bad", [np.zeros(2, np.complex64), np.zeros((1,) * 5), np.array(["x"]), np.zeros(2, object)])
def test_disallowed_arrays_are_not_encoded(bad):
    with pytest.raises(TypeError):
        packb(bad)


@pytest.mark.parametrize(
    "payload",
    [
        ["<f8", [3], b"\x00" * 23],  # byte count does not match shape
        ["<c8", [1], b"\x00" * 8],  # dtype not whitelisted
        ["|O", [1], b"\x00" * 8],
        ["<f8", [-1], b""],
        ["<f8", [1, 1, 1, 1, 1], b"\x00" * 8],  # too many dims
        ["<f8", "3", b"\x00" * 24],
        ["<f8", [3]],
        "garbage",
    ],
)
def test_malformed_arrays_are_protocol_errors(payload):
    data = msgpack.packb(msgpack.ExtType(1, msgpack.packb(payload, use_bin_type=True)), use_bin_type=True)
    with pytest.raises(RobotProtocolError) as e:
        unpackb(data, 1 << 20)
    assert e.value.code == "bad_message"


def test_unknown_extension_type_is_refused():
    with pytest.raises(RobotProtocolError):
        unpackb(msgpack.packb(msgpack.ExtType(7, b"xx")), 1 << 20)


def test_observation_round_trip_keeps_everything():
    rng = np.random.default_rng(0)
    obs = Observation(
        image=rng.integers(0, 255, (256, 256, 3), dtype=np.uint8),
        state=rng.normal(size=7),
        timestamp=1.25,
        info={"ee_pos": np.array([0.1, 0.2, 0.3]), "success": np.bool_(True), "distance": np.float64(0.5), "nested": {"k": [1, 2]}},
    )
    back = decode_observation(unpackb(packb(encode_observation(obs)), 1 << 22))
    np.testing.assert_array_equal(back.image, obs.image)
    np.testing.assert_array_equal(back.state, obs.state)
    assert back.timestamp == 1.25 and back.info["success"] is True and back.info["distance"] == 0.5
    np.testing.assert_array_equal(back.info["ee_pos"], obs.info["ee_pos"])
    assert back.info["nested"] == {"k": [1, 2]}


@pytest.mark.parametrize(
    "bad",
    [
        {"image": np.zeros((4, 4), np.uint8), "state": np.zeros(7), "timestamp": 0.0, "info": {}},
        {"image": np.zeros((4, 4, 3), np.float32), "state": np.zeros(7), "timestamp": 0.0, "info": {}},
        {"image": np.zeros((4, 4, 3), np.uint8), "state": np.zeros(6), "timestamp": 0.0, "info": {}},
        {"image": np.zeros((4, 4, 3), np.uint8), "state": np.zeros(7), "timestamp": "now", "info": {}},
        {"image": np.zeros((4, 4, 3), np.uint8), "state": np.zeros(7), "timestamp": 0.0},
        [1, 2],
    ],
)
def test_malformed_observations_are_refused(bad):
    with pytest.raises(RobotProtocolError):
        decode_observation(unpackb(packb(bad), 1 << 20))


# ---- envelopes, versions, schema ----------------------------------------------------------------------


def test_request_round_trip_without_secret():
    data, _ = encode_request("act", {"action": np.arange(7.0)}, 5, "sid")
    body, auth = decode_request_envelope(data)
    assert auth is None
    req = parse_request_body(body)
    assert req["type"] == "act" and req["id"] == 5 and req["sid"] == "sid"
    np.testing.assert_array_equal(req["args"]["action"], np.arange(7.0))


def test_action_may_be_a_plain_list_and_is_normalised_to_float64():
    data, _ = encode_request("act", {"action": [0, 1, 2, 3, 4, 5, 6]}, 1, "")
    req = parse_request_body(decode_request_envelope(data)[0])
    assert req["args"]["action"].dtype == np.float64


def test_other_protocol_version_is_refused_with_its_own_code():
    data, _ = encode_request("ping", {}, 1, "", version=PROTOCOL_VERSION + 1)
    with pytest.raises(RobotProtocolError) as e:
        decode_request_envelope(data)
    assert e.value.code == "unsupported_version"


def test_oversized_request_is_refused_before_decoding():
    with pytest.raises(RobotProtocolError) as e:
        decode_request_envelope(b"\x00" * (MAX_REQUEST_BYTES + 1))
    assert e.value.code == "too_large"


@pytest.mark.parametrize(
    "type_,args",
    [
        ("act", {}),
        ("act", {"action": np.zeros(6)}),
        ("act", {"action": np.zeros((7, 1))}),
        ("act", {"action": ["a"] * 7}),
        ("act", {"action": np.zeros(7), "extra": 1}),
        ("reset", {"seed": -1}),
        ("reset", {"seed": 1.5}),
        ("reset", {"seed": True}),
        ("reset", {"episode": 3}),
        ("reset", {"episode": "x" * 70000}),
        ("reset", {"task": ["reach"]}),
        ("ping", {"x": 1}),
    ],
)
def test_schema_violations_are_bad_requests(type_, args):
    data, _ = encode_request(type_, args, 1, "")
    with pytest.raises(RobotProtocolError) as e:
        parse_request_body(decode_request_envelope(data)[0])
    assert e.value.code == "bad_request"


def test_unknown_type_is_refused():
    body = packb({"type": "self_destruct", "id": 1, "args": {}})
    with pytest.raises(RobotProtocolError) as e:
        parse_request_body(body)
    assert e.value.code == "unknown_type"


def test_reply_round_trip_and_error_reply():
    ok = decode_reply(encode_reply(3, "srv", {"x": np.ones(2)}), None, b"")
    assert ok["ok"] and ok["id"] == 3 and ok["server"] == "srv"
    err = decode_reply(encode_reply(3, "srv", error=("stopped", "why")), None, b"")
    assert not err["ok"] and err["error"] == {"code": "stopped", "message": "why"}


# ---- authentication -----------------------------------------------------------------------------------


def _authed(type_="ping", args=None, secret=SECRET):
    data, nonce = encode_request(type_, args or {}, 1, "s", secret)
    body, auth = decode_request_envelope(data)
    return body, auth, nonce


def test_valid_mac_passes_once_and_replay_is_refused():
    guard = ReplayGuard(30)
    body, auth, _ = _authed()
    assert verify_request(SECRET, body, auth, guard) is None
    assert verify_request(SECRET, body, auth, guard) == "replayed nonce"


def test_missing_or_wrong_credentials_are_refused():
    guard = ReplayGuard(30)
    body, auth, _ = _authed(secret=b"another-secret-of-enough-length!")
    assert "bad MAC" in verify_request(SECRET, body, auth, guard)
    data, _ = encode_request("ping", {}, 1, "s", None)
    body, auth = decode_request_envelope(data)
    assert "no credentials" in verify_request(SECRET, body, auth, guard)


def test_altered_body_fails_the_mac():
    _, auth, _ = _authed("act", {"action": np.zeros(7)})
    tampered = packb({"type": "act", "id": 1, "sid": "s", "args": {"action": np.full(7, 0.07)}})
    assert "bad MAC" in verify_request(SECRET, tampered, auth, ReplayGuard(30))


def test_the_mac_binds_the_server_process_and_only_hello_may_be_unbound():
    data, _ = encode_request("act", {"action": np.zeros(7)}, 1, "s", SECRET, server_id="aaaa")
    body, auth = decode_request_envelope(data)
    assert verify_request(SECRET, body, auth, ReplayGuard(30)) is None
    assert signed_for(auth, "aaaa", "act") is None
    assert "restarted" in signed_for(auth, "bbbb", "act")  # another process of the server
    forged = dict(auth, srv="bbbb")  # re-labelling the target process breaks the MAC
    assert "bad MAC" in verify_request(SECRET, body, forged, ReplayGuard(30))
    _, unbound, _ = _authed("hello", {"client": "c"})
    assert unbound["srv"] == "" and signed_for(unbound, "bbbb", "hello") is None
    _, unbound_act, _ = _authed("act", {"action": np.zeros(7)})
    assert "hello first" in signed_for(unbound_act, "bbbb", "act")


def test_takeover_is_a_flag_of_the_commands_only():
    for t in ("act", "reset", "stop"):
        args = {"action": np.zeros(7)} if t == "act" else {}
        data, _ = encode_request(t, {**args, "takeover": True}, 1, "")
        assert parse_request_body(decode_request_envelope(data)[0])["args"]["takeover"] is True
        data, _ = encode_request(t, {**args, "takeover": 1}, 1, "")
        with pytest.raises(RobotProtocolError, match="takeover"):
            parse_request_body(decode_request_envelope(data)[0])
    data, _ = encode_request("observe", {"takeover": True}, 1, "")
    with pytest.raises(RobotProtocolError, match="unknown arguments"):
        parse_request_body(decode_request_envelope(data)[0])


def test_stale_and_future_timestamps_are_refused():
    guard = ReplayGuard(max_clock_skew_s=5)
    assert "timestamp" in guard.check(time.time() - 60, os.urandom(16))
    assert "timestamp" in guard.check(time.time() + 60, os.urandom(16))
    assert "timestamp" in guard.check(float("nan"), os.urandom(16))
    assert guard.check(time.time(), os.urandom(16)) is None


def test_replay_guard_forgets_old_nonces_and_is_bounded():
    guard = ReplayGuard(max_clock_skew_s=1, max_entries=3)
    t = 1000.0
    for _ in range(3):
        assert guard.check(t, os.urandom(16), now=t) is None
    assert "too many" in guard.check(t, os.urandom(16), now=t)
    assert guard.check(t + 3, os.urandom(16), now=t + 3) is None  # the old ones were pruned


def test_malformed_auth_block_is_unauthorized():
    env = packb({"p": PROTOCOL_NAME, "v": PROTOCOL_VERSION, "body": b"x", "auth": {"ts": 1.0, "nonce": b"short", "mac": b""}})
    with pytest.raises(RobotProtocolError) as e:
        decode_request_envelope(env)
    assert e.value.code == "unauthorized"


def test_reply_mac_binds_the_reply_to_the_request():
    nonce = os.urandom(16)
    reply = encode_reply(1, "srv", {"x": 1}, secret=SECRET, nonce=nonce)
    assert decode_reply(reply, SECRET, nonce)["ok"]
    with pytest.raises(RobotProtocolError):
        decode_reply(reply, SECRET, os.urandom(16))  # answer to another request
    with pytest.raises(RobotProtocolError):
        decode_reply(encode_reply(1, "srv", {"x": 1}), SECRET, nonce)  # unsigned reply
    # an unsigned "unauthorized" refusal is passed on so the client can say why
    refused = decode_reply(encode_reply(0, "srv", error=("unauthorized", "bad MAC")), SECRET, nonce)
    assert refused["error"]["code"] == "unauthorized"


def test_secret_from_file_env_and_refusals(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("ROBOT_SERVER_SECRET", raising=False)
    assert load_secret(None) is None
    monkeypatch.setenv("ROBOT_SERVER_SECRET", "from-the-environment-0123")
    assert load_secret(None) == b"from-the-environment-0123"
    path = write_secret_file(tmp_path / "robot.secret")
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(load_secret(path)) == 64  # the file wins over the environment
    with pytest.raises(FileExistsError):
        write_secret_file(path)
    short = tmp_path / "short"
    short.write_text("abc")
    with pytest.raises(ValueError, match="at least"):
        load_secret(short)
    with pytest.raises(ValueError, match="cannot read"):
        load_secret(tmp_path / "missing")
    loose = tmp_path / "loose"
    loose.write_text("x" * 32)
    loose.chmod(0o644)
    load_secret(loose)
    assert "readable by other users" in caplog.text


def test_loopback_detection_and_endpoints():
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        assert is_loopback(host)
    for host in ("0.0.0.0", "10.0.0.2", "::", "robot.lab", ""):
        assert not is_loopback(host)
    assert endpoint("::1", 5) == "tcp://[::1]:5" and endpoint("127.0.0.1", 5) == "tcp://127.0.0.1:5"


# ---- fuzzing the decoder: any bytes give a RobotProtocolError or a valid request, nothing else --------


def _decode_all(data: bytes):
    body, _ = decode_request_envelope(data)
    return parse_request_body(body)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data):
    try:
        _decode_all(data)
    except RobotProtocolError:
        pass


_msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20) | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    type_=st.one_of(st.sampled_from(["hello", "ping", "observe", "act", "reset", "stop", "goal_image"]), _msgpack_values),
    rid=_msgpack_values,
    args=st.one_of(
        st.dictionaries(st.sampled_from(["action", "seed", "episode", "task", "client", "version", "x"]), _msgpack_values, max_size=4),
        _msgpack_values,
    ),
)
def test_fuzz_structured_bodies(type_, rid, args):
    """Well-formed msgpack with wrong types in every slot: refused with a code, or accepted and well-typed."""
    data = packb({"p": PROTOCOL_NAME, "v": PROTOCOL_VERSION, "body": packb({"type": type_, "id": rid, "args": args})})
    try:
        req = _decode_all(data)
    except RobotProtocolError as e:
        assert e.code in {"bad_message", "bad_request", "unknown_type"}
        return
    if req["type"] == "act":
        assert req["args"]["action"].shape == (7,) and req["args"]["action"].dtype == np.float64


_VALID_ACT = encode_request("act", {"action": np.full(7, 0.01)}, 7, "session", SECRET)[0]


@settings(max_examples=500, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(_VALID_ACT) - 1), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.integers(0, len(_VALID_ACT)),
)
def test_fuzz_mutated_valid_requests(edits, cut):
    """Byte edits and truncations of a real signed request: refused with a code, or still well-typed;
    and never accepted as authentic unless the signed body is intact."""
    data = bytearray(_VALID_ACT)
    for pos, value in edits:
        data[pos] = value
    data = bytes(data[:cut]) if cut < len(data) else bytes(data)
    try:
        body, auth = decode_request_envelope(data)
        req = parse_request_body(body)
    except RobotProtocolError:
        return
    original_body = decode_request_envelope(_VALID_ACT)[0]
    if verify_request(SECRET, body, auth, ReplayGuard(1e9)) is None:
        assert body == original_body
    assert req["type"] in {"hello", "ping", "observe", "act", "reset", "stop", "goal_image"}
