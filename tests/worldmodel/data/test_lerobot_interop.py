"""Interoperability with the real `lerobot` package, in both directions and for appends by either writer.

Every CI run reads the committed dataset LeRobot's writer made (lerobot_fixture.py) with our reader, and
appends to it with ours. The tests that need `lerobot` itself (Python >= 3.12) skip elsewhere, saying so;
`.ci/lerobot_interop` runs them in a Python 3.12 venv where one can be made."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from lerobot_fixture import CAMERA, FIXTURE, FPS, SIZE, episodes, lerobot_frame, write_with_lerobot
from wm_data_helpers import CAMS, episode_data, make_writer, write_episode

from vjepa_planning.worldmodel.data import DatasetWriter, LeRobotDataset
from vjepa_planning.worldmodel.data.clips import check_dataset

FRAME_TOL = 8.0  # mean |uint8 difference| after a lossy codec


def needs_lerobot():
    reason = (f"the lerobot package is not installed (it needs Python >= 3.12; this is {sys.version.split()[0]}); "
              "bash .ci/lerobot_interop runs these tests in a Python 3.12 venv")
    return pytest.importorskip("lerobot.datasets.lerobot_dataset", reason=reason).LeRobotDataset


def assert_matches(ours: LeRobotDataset, data: list[dict], first: int = 0) -> None:
    for i, d in enumerate(data, start=first):
        ep = ours.episode(i)
        np.testing.assert_array_equal(ep.states, d["states"])
        np.testing.assert_array_equal(ep.actions, d["actions"])
        assert ep.task == d["task"]
        frames = ours.episode_frames(i, CAMERA)
        assert frames.shape == d["frames"].shape
        assert np.abs(frames.astype(np.float64) - d["frames"]).mean() < FRAME_TOL


def write_ours(root: Path, data: list[dict], **writer_kw) -> None:
    with DatasetWriter(root, FPS, {CAMERA: SIZE}, {}, **writer_kw) as w:
        for d in data:
            for t in range(len(d["states"])):
                w.add_frame(d["states"][t], d["actions"][t], {CAMERA: d["frames"][t]}, d["task"])
            w.save_episode()


def append_ours(root: Path, n: int = 2) -> list[dict]:
    """Our writer's episodes added to a LeRobot-made dataset: same features, LeRobot's codec and robot type."""
    data = [{**d, "task": f"ours {k}"} for k, d in enumerate(episodes()[:n])]
    write_ours(root, data, robot_type=None, codec="libsvtav1")
    return data


def test_the_committed_lerobot_dataset_reads_as_written() -> None:
    ds = LeRobotDataset(FIXTURE, verify="full")
    data = episodes()
    assert ds.num_episodes == len(data) and ds.fps == FPS and ds.cameras == {CAMERA: SIZE}
    assert ds.info["features"][f"observation.images.{CAMERA}"]["info"]["video.codec"] == "av1"
    assert len(list((FIXTURE / "data").rglob("*.parquet"))) == 1  # several episodes in one data file
    assert len(list((FIXTURE / "videos").rglob("*.mp4"))) == 1  # and in one video file
    assert_matches(ds, data)
    check_dataset(ds, camera=CAMERA)  # what post-train and pretrain-encoder check before training


def test_our_writer_appends_to_a_lerobot_dataset(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(FIXTURE, root)
    added = append_ours(root)
    ds = LeRobotDataset(root, verify="full")
    assert ds.num_episodes == len(episodes()) + len(added)
    assert_matches(ds, episodes())
    assert_matches(ds, added, first=len(episodes()))


def test_lerobot_reads_ours_as_our_reader_does(tmp_path: Path) -> None:
    Theirs = needs_lerobot()
    import torch

    data = [episode_data(s, n) for s, n in ((0, 6), (1, 5), (2, 7))]
    with make_writer(tmp_path / "ds") as w:
        for d in data:
            write_episode(w, d)
    ours = LeRobotDataset(tmp_path / "ds")
    theirs = Theirs("local/ours", root=tmp_path / "ds", video_backend="pyav")
    assert len(theirs) == ours.num_frames and theirs.meta.total_episodes == 3
    row = 0
    for i, d in enumerate(data):
        ep = ours.episode(i)
        frames = {cam: ours.episode_frames(i, cam) for cam in CAMS}
        for t in range(ep.length):
            item = theirs[row]
            assert item["task"] == d["task"]  # the text, read from tasks.parquet's pandas index
            np.testing.assert_array_equal(item["observation.state"].numpy(), ep.states[t])
            np.testing.assert_array_equal(item["action"].numpy(), ep.actions[t])
            for cam in CAMS:  # LeRobot: float CHW in [0, 1]
                img = (item[f"observation.images.{cam}"].permute(1, 2, 0).numpy() * 255).round()
                assert np.abs(img - frames[cam][t]).mean() < 1.5, cam  # the same decoder, two code paths
            row += 1
    windowed = Theirs("local/ours", root=tmp_path / "ds", video_backend="pyav",
                      delta_timestamps={"observation.state": [-1 / FPS, 0.0], "action": [0.0, 1 / FPS]})
    item = windowed[1]
    np.testing.assert_array_equal(item["observation.state"].numpy(), data[0]["states"][0:2])
    batch = next(iter(torch.utils.data.DataLoader(theirs, batch_size=4)))
    assert batch["observation.state"].shape == (4, 7)
    assert theirs.meta.stats["observation.state"]["q50"].shape == (7,)


def test_lerobot_written_fresh_reads_with_ours(tmp_path: Path) -> None:
    """Today's lerobot, not only the committed fixture: a newer release that changed its format shows here."""
    needs_lerobot()
    write_with_lerobot(tmp_path / "ds")
    assert_matches(LeRobotDataset(tmp_path / "ds", verify="full"), episodes())


def test_lerobot_appends_to_ours_and_both_read_it(tmp_path: Path) -> None:
    Theirs = needs_lerobot()
    data = episodes()
    root = tmp_path / "ds"
    write_ours(root, data[:2])
    appended = {**data[2], "task": "appended by lerobot"}
    ds = Theirs.resume("local/ours", root=root)
    for t in range(len(appended["states"])):
        ds.add_frame(lerobot_frame(appended, t))
    ds.save_episode()
    ds.finalize()
    theirs = Theirs("local/ours", root=root, video_backend="pyav")
    assert theirs.meta.total_episodes == 3 and theirs[len(theirs) - 1]["task"] == "appended by lerobot"
    assert_matches(LeRobotDataset(root, verify="full"), [*data[:2], appended])


def test_ours_appends_to_lerobots_and_lerobot_still_loads_it(tmp_path: Path) -> None:
    Theirs = needs_lerobot()
    root = tmp_path / "ds"
    shutil.copytree(FIXTURE, root)
    added = append_ours(root)
    theirs = Theirs("local/lerobot_written", root=root, video_backend="pyav")
    assert theirs.meta.total_episodes == len(episodes()) + len(added)
    last = theirs[len(theirs) - 1]
    assert last["task"] == added[-1]["task"]
    np.testing.assert_array_equal(last["observation.state"].numpy(), added[-1]["states"][-1])
    assert set(theirs.meta.stats) >= {"observation.state", "action", f"observation.images.{CAMERA}"}
