"""DROID import on small episodes written here in the raw DROID layout (h5 + PyAV mp4 + metadata)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import h5py
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from state_reference import state_delta

from vjepa_planning.robot_pose import in_convention, state_deltas, wrap_euler
from vjepa_planning.worldmodel import state_math
from vjepa_planning.worldmodel.data import DatasetError, LeRobotDataset
from vjepa_planning.worldmodel.data.droid_import import (
    import_droid,
    main,
    read_droid_episode,
    resample_indices,
)

SERIALS = {"ext1": "11111111", "ext2": "22222222", "wrist": "33333333"}
W, H, MARGIN = 128, 96, 16  # DROID-like wide frames; the centre square is x in [16, 112)


def native_rotations(T: int) -> Rotation:
    # Gripper pointing down: roll crosses ±pi, so naive Euler differences would jump by ~2 pi.
    t = np.arange(T) / 15
    yaw = Rotation.from_rotvec(np.outer(0.3 * t, [0, 0, 1]))
    roll = Rotation.from_rotvec(np.outer(np.pi - 0.1 + 0.2 * t, [1, 0, 0]))
    return yaw * roll


def native_states(T: int) -> np.ndarray:
    t = np.arange(T) / 15
    pos = np.stack([0.4 + 0.1 * np.sin(t), 0.05 * t, 0.3 - 0.02 * t**2], 1)
    grip = np.clip(t - 1.0, 0.0, 1.0)
    return np.concatenate([pos, native_rotations(T).as_euler("xyz"), grip[:, None]], 1)


def ext1_frame(i: int) -> np.ndarray:
    """Grey level 5 * i encodes the native step (luma survives the codec best); blue margins
    must be cropped away."""
    img = np.full((H, W, 3), 5 * i, np.uint8)
    img[:, :MARGIN] = img[:, W - MARGIN :] = (0, 0, 255)
    return img


def write_video(path: Path, frames: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=15)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"crf": "10"}
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def write_droid_episode(ep: Path, T: int = 45, video_frames: int | None = None, stereo: bool = False, task: str = "put the marker in the cup") -> np.ndarray:
    ep.mkdir(parents=True)
    states = native_states(T)
    with h5py.File(ep / "trajectory.h5", "w") as f:
        f["observation/robot_state/cartesian_position"] = states[:, :6]
        f["observation/robot_state/gripper_position"] = states[:, 6]
        f["observation/robot_state/joint_positions"] = np.zeros((T, 7))
        f["action/cartesian_position"] = states[:, :6] + 0.01
        f["action/gripper_position"] = states[:, 6]
        f["observation/timestamp/robot_state/robot_timestamp_seconds"] = np.arange(T) // 15
    meta = {f"{k}_cam_serial": v for k, v in SERIALS.items()} | {"current_task": task, "uuid": ep.name}
    (ep / f"metadata_{ep.name}.json").write_text(json.dumps(meta))
    n = T if video_frames is None else video_frames
    mp4 = ep / "recordings" / "MP4"
    ext1 = [ext1_frame(i) for i in range(n)]
    if stereo:  # side-by-side: right view magenta
        right = np.zeros((H, W, 3), np.uint8)
        right[..., [0, 2]] = 255
        write_video(mp4 / f"{SERIALS['ext1']}-stereo.mp4", [np.concatenate([f, right], 1) for f in ext1])
    else:
        write_video(mp4 / f"{SERIALS['ext1']}.mp4", ext1)
    write_video(mp4 / f"{SERIALS['wrist']}.mp4", [np.full((H, W, 3), (255, 0, 0), np.uint8)] * n)
    return states


def rotation_error(a: Rotation, b: Rotation) -> np.ndarray:
    return (a * b.inv()).magnitude()


# --------------------------------------------------------------------------------------------------


def test_resample_indices_15_to_4_hz() -> None:
    assert resample_indices(30, 15, 4).tolist() == [0, 4, 8, 11, 15, 19, 23, 26]
    assert resample_indices(45, 15, 4).tolist() == [0, 4, 8, 11, 15, 19, 23, 26, 30, 34, 38, 41]
    assert resample_indices(7, 15, 15).tolist() == list(range(7))
    assert resample_indices(1, 15, 4).tolist() == [0]
    with pytest.raises(ValueError, match="upsample"):
        resample_indices(10, 15, 30)


def test_state_deltas_compose_back_to_the_states() -> None:
    states = native_states(20)[::3]
    a = state_deltas(states)
    assert a.shape == states.shape
    assert (a[-1] == 0).all()
    np.testing.assert_allclose(a[:-1, :3], np.diff(states[:, :3], axis=0), atol=1e-7)
    np.testing.assert_allclose(a[:-1, 6], np.diff(states[:, 6]), atol=1e-7)
    # R_{t+1} = ΔR_t R_t, with ΔR_t given as extrinsic Euler xyz
    rot = Rotation.from_euler("xyz", states[:, 3:6])
    delta = Rotation.from_euler("xyz", a[:-1, 3:6].astype(np.float64))
    assert rotation_error(delta * rot[:-1], rot[1:]).max() < 1e-6
    # small deltas even where the Euler roll wraps around ±pi (naive subtraction jumps by ~2 pi)
    assert np.abs(np.diff(states[:, 3])).max() > 3
    assert np.abs(a[:, 3:6]).max() < 0.2


def test_state_deltas_agree_with_the_model_state_math() -> None:
    """The importer's numpy/scipy actions use the same convention as worldmodel.state_math (torch)."""
    states = native_states(60)[::4]
    ours = state_deltas(states)
    ref = state_delta(torch.from_numpy(states[:-1]), torch.from_numpy(states[1:])).numpy()
    np.testing.assert_allclose(ours[:-1], ref, atol=1e-6)
    back = state_math.integrate_state(torch.from_numpy(states[:-1]), torch.from_numpy(ours[:-1].astype(np.float64)))
    back_rot = Rotation.from_euler("xyz", back[:, 3:6].numpy())
    assert rotation_error(back_rot, Rotation.from_euler("xyz", states[1:, 3:6])).max() < 1e-6


def test_import_one_episode(tmp_path: Path) -> None:
    states = write_droid_episode(tmp_path / "raw" / "ep0")
    res = import_droid([tmp_path / "raw"], tmp_path / "out", camera="ext1", fps=4, size=32, progress=False)
    assert res.episode_indices == [0] and res.failed == {}

    ds = LeRobotDataset(tmp_path / "out", verify="full")
    assert ds.fps == 4 and ds.cameras == {"ext1": (32, 32)} and ds.robot_type == "franka"
    ep = ds.episode(0)
    idx = np.array([0, 4, 8, 11, 15, 19, 23, 26, 30, 34, 38, 41])
    assert ep.length == len(idx) and ep.task == "put the marker in the cup"
    # states: the native ones with the roll wrapped into the sim's convention (DROID's flickers across ±pi)
    assert np.abs(np.diff(states[idx, 3])).max() > 3 and in_convention(ep.states[:, 3:6], atol=1e-6)
    assert np.abs(np.diff(ep.states[:, 3])).max() < 0.2
    expected = states[idx].copy()
    expected[:, 3:6] = wrap_euler(expected[:, 3:6])
    np.testing.assert_array_equal(ep.states, expected.astype(np.float32))
    # actions: position/gripper differences and R_{t+1} R_t^T between the *resampled* states
    np.testing.assert_allclose(ep.actions[:-1, :3], np.diff(states[idx, :3], axis=0), atol=1e-6)
    np.testing.assert_allclose(ep.actions[:-1, 6], np.diff(states[idx, 6]), atol=1e-6)
    assert (ep.actions[-1] == 0).all()
    rot = native_rotations(45)[idx]
    delta = Rotation.from_euler("xyz", ep.actions[:-1, 3:6].astype(np.float64))
    assert rotation_error(delta * rot[:-1], rot[1:]).max() < 1e-5
    # frames: the right native steps (grey 5 * step, adjacent steps 5 apart), margins cropped away
    frames = ep.images["ext1"].astype(float)
    assert frames.shape == (len(idx), 32, 32, 3)
    np.testing.assert_allclose(frames.mean((1, 2, 3)), 5 * idx, atol=2.5)
    assert (frames[..., 2] - frames[..., 0]).max() < 30


def test_stereo_video_uses_the_left_view(tmp_path: Path) -> None:
    write_droid_episode(tmp_path / "ep", T=20, stereo=True)
    ep = read_droid_episode(tmp_path / "ep", "ext1", fps=5, size=32)
    idx = resample_indices(20, 15, 5)
    assert ep.native_indices.tolist() == idx.tolist() == [0, 3, 6, 9, 12, 15, 18]
    frames = ep.frames.astype(float)
    np.testing.assert_allclose(frames.mean((1, 2, 3)), 5 * idx, atol=2.5)
    assert (frames[..., 0] - frames[..., 1]).max() < 30  # no magenta from the right view


def test_wrist_camera_and_short_video(tmp_path: Path) -> None:
    write_droid_episode(tmp_path / "ep", T=45, video_frames=30)
    with pytest.warns(UserWarning, match="8 of 12 resampled frames"):
        ep = read_droid_episode(tmp_path / "ep", "wrist", fps=4, size=32)
    assert ep.states.shape == (8, 7) and ep.frames.shape == (8, 32, 32, 3)
    np.testing.assert_allclose(ep.frames.reshape(-1, 3).mean(0), [255, 0, 0], atol=4)


def test_bad_episodes_are_reported_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_droid_episode(tmp_path / "raw" / "a_good")
    write_droid_episode(tmp_path / "raw" / "b_no_video")
    (tmp_path / "raw/b_no_video/recordings/MP4" / f"{SERIALS['ext1']}.mp4").unlink()
    write_droid_episode(tmp_path / "raw" / "c_no_meta")
    (tmp_path / "raw/c_no_meta/metadata_c_no_meta.json").unlink()

    with pytest.warns(UserWarning, match="skipping"):
        res = import_droid([tmp_path / "raw"], tmp_path / "out", size=32, progress=False)
    assert res.episode_indices == [0] and res.sources == [tmp_path / "raw" / "a_good"]
    assert set(res.failed) == {tmp_path / "raw/b_no_video", tmp_path / "raw/c_no_meta"}
    assert "camera video is missing" in res.failed[tmp_path / "raw/b_no_video"]
    assert "no metadata_*.json" in res.failed[tmp_path / "raw/c_no_meta"]
    with pytest.raises(DatasetError, match=f"{SERIALS['ext1']}.mp4: camera video is missing"):
        import_droid([tmp_path / "raw/b_no_video"], tmp_path / "out2", size=32, on_error="raise", progress=False)

    # the CLI appends to the same dataset
    assert main([str(tmp_path / "raw/a_good"), "--out", str(tmp_path / "out"), "--size", "32"]) == 0
    assert "imported 1 episode(s)" in capsys.readouterr().out
    assert LeRobotDataset(tmp_path / "out").episode_indices == [0, 1]
