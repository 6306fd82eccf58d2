"""Writer/reader round trip, layout, stats, append, merge, parallel writers and crash safety."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wm_data_helpers import (
    CAMS,
    FPS,
    add_frames,
    episode_data,
    length_of,
    make_writer,
    seed_of,
    write_episode,
)

from vjepa_planning.worldmodel.data import DatasetError, DatasetWarning, DatasetWriter, LeRobotDataset, merge_datasets
from vjepa_planning.worldmodel.data.lerobot.stats import _aggregate_stats, array_stats
from vjepa_planning.worldmodel.data.lerobot.video import VideoEncoder, codec_options

HELPER = Path(__file__).with_name("wm_data_helpers.py")


def run_helper(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HELPER), *map(str, args)], capture_output=True, text=True, timeout=60, **kw)


def assert_episode_equal(ep, d: dict, frame_tol: float = 3.0) -> None:
    np.testing.assert_array_equal(ep.states, d["states"])
    np.testing.assert_array_equal(ep.actions, d["actions"])
    np.testing.assert_array_equal(ep.extras["observation.ee_pos"], d["ee_pos"])
    np.testing.assert_array_equal(ep.extras["next.success"], d["success"])
    assert ep.tasks == [d["task"]]
    for cam, frames in d["frames"].items():
        got = ep.images[cam]
        assert got.shape == frames.shape and got.dtype == np.uint8
        assert np.abs(got.astype(float) - frames).mean() < frame_tol


def all_rows(root: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((root / "data").glob("chunk-*/file-*.parquet"))])


# --------------------------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    data = [episode_data(s, n) for s, n in ((0, 6), (1, 9))]
    with make_writer(tmp_path) as w:
        assert [write_episode(w, d) for d in data] == [0, 1]

    ds = LeRobotDataset(tmp_path, verify="full")
    assert ds.num_episodes == 2 and ds.num_frames == 15 and ds.fps == FPS
    assert ds.cameras == CAMS
    assert ds.tasks == ["task 0", "task 1"]
    for i, d in enumerate(data):
        ep = ds.episode(i)
        assert ep.index == i and ep.length == len(d["states"])
        assert_episode_equal(ep, d)
        np.testing.assert_allclose(ep.timestamps, np.arange(ep.length) / FPS)
        assert ep.states.dtype == np.float32 and ep.extras["next.success"].dtype == np.bool_
        assert ds.episode_frames(i, "wrist").shape == (ep.length, 48, 48, 3)
    # global row index and episode_index are contiguous across files
    rows = all_rows(tmp_path)
    assert rows.column("index").to_pylist() == list(range(15))
    assert rows.column("episode_index").to_pylist() == [0] * 6 + [1] * 9
    assert rows.column("task_index").to_pylist() == [0] * 6 + [1] * 9


def test_layout_is_lerobot_v3(tmp_path: Path) -> None:
    with make_writer(tmp_path) as w:
        write_episode(w, episode_data(0, 6))
        write_episode(w, episode_data(1, 5))
    info = json.loads((tmp_path / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["chunks_size"] == 1000
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, 11, 2)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["splits"] == {"train": "0:2"}
    f = info["features"]
    assert f["observation.state"] == {"dtype": "float32", "shape": [7], "names": ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]}
    assert f["action"]["names"] == ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "dgripper"]
    assert f["observation.ee_pos"]["shape"] == [3] and f["next.success"]["dtype"] == "bool"
    for k in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert k in f
    front = f["observation.images.front"]
    assert front["dtype"] == "video" and front["shape"] == [48, 64, 3]
    assert front["info"]["video.codec"] == "h264" and front["info"]["video.pix_fmt"] == "yuv420p"
    assert front["info"]["video.fps"] == FPS

    tasks = pq.read_table(tmp_path / "meta/tasks.parquet").to_pydict()
    assert tasks == {"task_index": [0, 1], "task": ["task 0", "task 1"]}
    meta = pq.read_table(tmp_path / "meta/episodes/chunk-000/file-001.parquet").to_pylist()[0]
    assert meta["episode_index"] == 1 and meta["length"] == 5 and meta["tasks"] == ["task 1"]
    assert (meta["dataset_from_index"], meta["dataset_to_index"]) == (6, 11)
    assert (meta["data/chunk_index"], meta["data/file_index"]) == (0, 1)
    assert meta["videos/observation.images.front/from_timestamp"] == 0.0
    assert meta["videos/observation.images.front/to_timestamp"] == 5 / FPS
    assert (tmp_path / "videos/observation.images.wrist/chunk-000/file-001.mp4").is_file()
    with av.open(str(tmp_path / "videos/observation.images.front/chunk-000/file-001.mp4")) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.codec_context.pix_fmt, s.frames) == ("h264", "yuv420p", 5)
    # data column types: fixed-size float32 lists for vectors, plain columns for scalars
    schema = pq.read_schema(tmp_path / "data/chunk-000/file-000.parquet")
    assert schema.field("observation.state").type == pa.list_(pa.float32(), 7)
    assert schema.field("next.success").type == pa.bool_()
    assert schema.field("index").type == pa.int64()


def test_tasks_file_is_indexed_by_task_as_lerobot_reads_and_appends_it(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    with make_writer(tmp_path) as w:
        write_episode(w, episode_data(0, 4))
        write_episode(w, episode_data(1, 4))
    path = tmp_path / "meta/tasks.parquet"
    tasks = pd.read_parquet(path)  # what LeRobot does: the task text is the index, task_index a column
    assert tasks.index.name == "task" and list(tasks.columns) == ["task_index"]
    assert [tasks.iloc[i].name for i in range(2)] == ["task 0", "task 1"]
    assert int(tasks.loc["task 1", "task_index"]) == 1
    # LeRobot appending a task: concat a frame indexed the same way and write it back with pandas
    new = pd.DataFrame({"task_index": [2]}, index=pd.Index(["task 2"], name="task"))
    pd.concat([tasks, new]).to_parquet(path)
    assert LeRobotDataset(tmp_path).tasks == ["task 0", "task 1", "task 2"]
    with make_writer(tmp_path) as w:  # and our writer appends after it
        write_episode(w, {**episode_data(2, 4), "task": "task 3"})
    assert pd.read_parquet(path).index.tolist() == ["task 0", "task 1", "task 2", "task 3"]


def test_stats_match_numpy(tmp_path: Path) -> None:
    data = [episode_data(s, n) for s, n in ((3, 7), (4, 5), (5, 9))]
    with make_writer(tmp_path) as w:
        for d in data:
            write_episode(w, d)
    stats = json.loads((tmp_path / "meta/stats.json").read_text())
    for key, values in (
        ("observation.state", np.concatenate([d["states"] for d in data])),
        ("action", np.concatenate([d["actions"] for d in data])),
        ("observation.ee_pos", np.concatenate([d["ee_pos"] for d in data])),
        ("next.success", np.concatenate([d["success"] for d in data]).astype(float)[:, None]),
        ("index", np.arange(21)[:, None]),
        ("episode_index", np.repeat([0, 1, 2], [7, 5, 9])[:, None]),
    ):
        v = values.astype(np.float64)
        s = stats[key]
        np.testing.assert_allclose(s["min"], v.min(0), rtol=1e-6)
        np.testing.assert_allclose(s["max"], v.max(0), rtol=1e-6)
        np.testing.assert_allclose(s["mean"], v.mean(0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(s["std"], v.std(0), rtol=1e-6, atol=1e-9)
        assert s["count"] == [21]
    # images: per-channel stats in [0, 1], shape (3, 1, 1), close to the full-resolution numpy values
    px = np.concatenate([d["frames"]["front"] for d in data]).reshape(-1, 3) / 255.0
    img = {k: np.asarray(v) for k, v in stats["observation.images.front"].items()}
    assert img["mean"].shape == (3, 1, 1)
    np.testing.assert_allclose(img["mean"].ravel(), px.mean(0), atol=0.01)
    np.testing.assert_allclose(img["std"].ravel(), px.std(0), atol=0.01)
    np.testing.assert_allclose(img["min"].ravel(), px.min(0), atol=0.02)
    np.testing.assert_allclose(img["max"].ravel(), px.max(0), atol=0.02)
    # the reader serves the same stats
    ds = LeRobotDataset(tmp_path)
    np.testing.assert_allclose(ds.stats["observation.state"]["std"], stats["observation.state"]["std"])


def test_stats_carry_lerobot_quantiles_and_shapes(tmp_path: Path) -> None:
    data = [episode_data(s, n) for s, n in ((3, 7), (4, 5))]
    with make_writer(tmp_path) as w:
        for d in data:
            write_episode(w, d)
    quantiles = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
    ep0 = pq.read_table(tmp_path / "meta/episodes/chunk-000/file-000.parquet")
    names = [c.removeprefix("stats/observation.state/") for c in ep0.column_names if c.startswith("stats/observation.state/")]
    assert names == ["min", "max", "mean", "std", "count", *quantiles]  # LeRobot's keys, in its order
    row = ep0.to_pylist()[0]
    for k, q in quantiles.items():  # per episode: numpy's quantiles of the episode's frames
        np.testing.assert_allclose(row[f"stats/observation.state/{k}"], np.quantile(data[0]["states"].astype(float), q, axis=0))
    # cameras: (3, 1, 1) nested in the meta and in stats.json, as LeRobot stores them
    assert ep0.schema.field("stats/observation.images.front/mean").type == pa.list_(pa.list_(pa.list_(pa.float64())))
    assert np.asarray(row["stats/observation.images.front/q50"]).shape == (3, 1, 1)
    px = data[0]["frames"]["front"][:, ::8, ::8].reshape(-1, 3)
    np.testing.assert_allclose(np.asarray(row["stats/observation.images.front/q50"]).ravel(),
                               np.quantile(px, 0.5, axis=0, method="inverted_cdf") / 255.0)
    stats = json.loads((tmp_path / "meta/stats.json").read_text())
    assert np.asarray(stats["observation.images.front"]["q99"]).shape == (3, 1, 1)
    # pooled quantiles: LeRobot's envelope (lowest lower quantiles, highest upper ones)
    eps = [LeRobotDataset(tmp_path).episode_stats(i)["observation.state"] for i in (0, 1)]
    np.testing.assert_allclose(stats["observation.state"]["q10"], np.minimum(eps[0]["q10"], eps[1]["q10"]))
    np.testing.assert_allclose(stats["observation.state"]["q90"], np.maximum(eps[0]["q90"], eps[1]["q90"]))
    assert LeRobotDataset(tmp_path).episode_stats(0)["observation.images.front"]["q01"].shape == (3, 1, 1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=6), st.integers(0, 2**31))
def test_pooled_stats_equal_numpy(lengths: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    parts = [rng.normal(3.0, 2.0, size=(n, 4)) for n in lengths]
    pooled = _aggregate_stats([array_stats(p) for p in parts])
    allv = np.concatenate(parts)
    np.testing.assert_allclose(pooled["mean"], allv.mean(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pooled["std"], allv.std(0), rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(pooled["min"], allv.min(0))
    assert pooled["count"][0] == len(allv)


def test_append_on_reopen_continues_numbering(tmp_path: Path) -> None:
    with make_writer(tmp_path) as w:
        write_episode(w, episode_data(0, 6))
        write_episode(w, episode_data(1, 5))
    with make_writer(tmp_path) as w:  # same spec: append
        assert write_episode(w, episode_data(2, 4)) == 2
    with DatasetWriter.open(tmp_path) as w:  # spec taken from info.json
        assert w.cameras == CAMS and "observation.ee_pos" in w.features
        assert write_episode(w, episode_data(3, 3)) == 3
    ds = LeRobotDataset(tmp_path, verify="full")
    assert ds.episode_indices == [0, 1, 2, 3]
    assert all_rows(tmp_path).column("index").to_pylist() == list(range(18))
    assert json.loads((tmp_path / "meta/info.json").read_text())["total_frames"] == 18
    assert_episode_equal(ds.episode(3), episode_data(3, 3))

    with pytest.raises(DatasetError, match=r"info\.json.*fps 4 != 5"):
        DatasetWriter(tmp_path, 5, CAMS, make_writer(tmp_path).features)
    with pytest.raises(DatasetError, match=r"info\.json.*feature names differ"):
        DatasetWriter(tmp_path, FPS, {"front": (48, 64)})


def test_discard_and_input_validation(tmp_path: Path) -> None:
    d = episode_data(0, 6)
    with make_writer(tmp_path) as w:
        add_frames(w, d, upto=4)
        assert w.num_buffered_frames == 4
        w.discard_episode()
        assert w.num_buffered_frames == 0
        with pytest.raises(ValueError, match="no frames"):
            w.save_episode()
        img = {cam: f[0] for cam, f in d["frames"].items()}
        extra = {"observation.ee_pos": d["ee_pos"][0], "next.success": False}
        with pytest.raises(ValueError, match="observation.state"):
            w.add_frame(np.zeros(6), np.zeros(7), img, "t", extra)
        with pytest.raises(ValueError, match="front"):
            w.add_frame(np.zeros(7), np.zeros(7), {**img, "front": img["front"].astype(np.float32)}, "t", extra)
        with pytest.raises(ValueError, match="missing"):
            w.add_frame(np.zeros(7), np.zeros(7), img, "t", {"observation.ee_pos": np.zeros(3)})
        with pytest.raises(ValueError, match="cameras"):
            w.add_frame(np.zeros(7), np.zeros(7), {"front": img["front"]}, "t", extra)
        assert write_episode(w, d) == 0  # discarded frames never got an index
    assert list((tmp_path / ".tmp").iterdir()) == []
    assert LeRobotDataset(tmp_path).num_episodes == 1
    with pytest.raises(ValueError, match="even"):
        DatasetWriter(tmp_path / "odd", FPS, {"c": (31, 32)})


def test_merge_renumbers_and_links(tmp_path: Path) -> None:
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    da = [episode_data(s, length_of(s), task=f"a{s}") for s in (10, 11)]
    db = [episode_data(s, length_of(s), task=f"b{s}") for s in (20, 21, 22)]
    for root, eps in ((a, da), (b, db)):
        with make_writer(root) as w:
            for d in eps:
                write_episode(w, d)
    assert merge_datasets([a, b], out) == [0, 1, 2, 3, 4]

    ds = LeRobotDataset(out, verify="full")
    assert ds.num_episodes == 5 and ds.tasks == ["a10", "a11", "b20", "b21", "b22"]
    for i, d in enumerate(da + db):
        ep = ds.episode(i)
        assert_episode_equal(ep, d)
        assert (ep.task_indices == i).all()
    lengths = [len(d["states"]) for d in da + db]
    assert all_rows(out).column("index").to_pylist() == list(range(sum(lengths)))
    # videos were hard-linked, not re-encoded
    src = b / "videos/observation.images.front/chunk-000/file-000.mp4"
    dst = out / "videos/observation.images.front/chunk-000/file-002.mp4"
    assert os.stat(src).st_ino == os.stat(dst).st_ino
    states = np.concatenate([d["states"] for d in da + db]).astype(np.float64)
    np.testing.assert_allclose(ds.stats["observation.state"]["mean"], states.mean(0), rtol=1e-6)
    # merging into an existing dataset appends
    assert merge_datasets([a], out, link=False) == [5, 6]
    assert LeRobotDataset(out).num_episodes == 7


def test_merge_keeps_episode_info_and_refuses_a_corrupt_source(tmp_path: Path) -> None:
    a, out = tmp_path / "a", tmp_path / "out"
    with make_writer(a) as w:
        for s in (10, 11):
            add_frames(w, episode_data(s, length_of(s)))
            w.save_episode(info={"seed": s, "policy": "oracle"})
    assert merge_datasets([a], out) == [0, 1]
    assert [LeRobotDataset(out).episode_info(i) for i in (0, 1)] == [{"seed": 10, "policy": "oracle"}, {"seed": 11, "policy": "oracle"}]
    video = a / "videos/observation.images.front/chunk-000/file-001.mp4"
    b = bytearray(video.read_bytes())
    b[len(b) // 2] ^= 0xFF
    video.write_bytes(bytes(b))
    with pytest.raises(DatasetError, match="sha256") as err:
        merge_datasets([a], tmp_path / "out2")
    assert err.value.path == str(video)
    with pytest.warns(DatasetWarning, match="skipped 1 bad episode"):  # or leaves it out, and says so
        assert merge_datasets([a], tmp_path / "out3", on_error="skip") == [0]


def test_parallel_writers_share_one_root(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, str(HELPER), "parallel", str(tmp_path), str(k), "3"], stderr=subprocess.PIPE, text=True)
        for k in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()

    ds = LeRobotDataset(tmp_path, verify="full")
    assert ds.episode_indices == list(range(9))
    expected = {seed_of(k, i) for k in range(3) for i in range(3)}
    seen = set()
    start = 0
    for i in range(9):
        ep = ds.episode(i)
        # identify the episode by its content and compare against what that worker wrote
        seed = next(s for s in expected if length_of(s) == ep.length and np.array_equal(episode_data(s, ep.length)["states"], ep.states))
        assert_episode_equal(ep, episode_data(seed, length_of(seed)))
        seen.add(seed)
        meta = pq.read_table(tmp_path / f"meta/episodes/chunk-000/file-{i:03d}.parquet").to_pylist()[0]
        assert meta["dataset_from_index"] == start
        start = meta["dataset_to_index"]
    assert seen == expected
    info = json.loads((tmp_path / "meta/info.json").read_text())
    assert (info["total_episodes"], info["total_frames"]) == (9, start)
    assert json.loads((tmp_path / "meta/stats.json").read_text())["index"]["count"] == [start]
    assert all_rows(tmp_path).column("index").to_pylist() == list(range(start))


def test_sigkill_mid_episode_keeps_earlier_episodes(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(HELPER), "kill_mid", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "READY"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # the half-buffered episode left at most temp files (x264 may not have flushed any bytes yet)
    assert not (tmp_path / "data/chunk-000/file-002.parquet").exists()

    ds = LeRobotDataset(tmp_path, verify="full")
    assert ds.episode_indices == [0, 1]
    for i in (0, 1):
        assert_episode_equal(ds.episode(i), episode_data(i, length_of(i)))
    info = json.loads((tmp_path / "meta/info.json").read_text())
    assert (info["total_episodes"], info["total_frames"]) == (2, length_of(0) + length_of(1))

    with make_writer(tmp_path) as w:  # reopening cleans the dead writer's temp files and appends
        assert list((tmp_path / ".tmp").iterdir()) == []
        assert write_episode(w, episode_data(2, 8)) == 2
    assert LeRobotDataset(tmp_path, verify="full").num_episodes == 3


DATA2 = "data/chunk-000/file-002.parquet"
FRONT2 = "videos/observation.images.front/chunk-000/file-002.mp4"
WRIST2 = "videos/observation.images.wrist/chunk-000/file-002.mp4"


@pytest.mark.parametrize(
    ("pattern", "committed", "in_place"),
    [
        ("meta/tasks.parquet", False, []),
        ("data/chunk-000/file-002", False, []),
        ("videos/observation.images.wrist/", False, [DATA2, FRONT2]),
        ("meta/episodes/", False, [DATA2, FRONT2, WRIST2]),  # everything but the commit point
        ("meta/stats.json", True, [DATA2, FRONT2, WRIST2]),  # committed; stats.json, info.json stale
        ("meta/info.json", True, [DATA2, FRONT2, WRIST2]),  # committed; info.json stale
    ],
)
def test_sigkill_during_commit_is_all_or_nothing(tmp_path: Path, pattern: str, committed: bool, in_place: list[str]) -> None:
    res = run_helper("crash_at", tmp_path, pattern)
    assert res.returncode == -signal.SIGKILL, res.stderr + res.stdout
    for rel in (DATA2, FRONT2, WRIST2):
        assert (tmp_path / rel).exists() == (rel in in_place), rel
    info = json.loads((tmp_path / "meta/info.json").read_text())
    assert info["total_episodes"] == 2  # info.json is always the last file rewritten

    lens = [length_of(0), length_of(1), 8]
    n = 3 if committed else 2
    with pytest.warns(DatasetWarning) if committed else _no_warning():
        ds = LeRobotDataset(tmp_path, verify="full")
        stats = ds.stats  # stale stats.json is recomputed (with a warning) from the episode metas
    assert ds.episode_indices == list(range(n))
    states = np.concatenate([episode_data(s, lens[s])["states"] for s in range(n)]).astype(np.float64)
    np.testing.assert_allclose(stats["observation.state"]["mean"], states.mean(0), rtol=1e-6)

    # the next writer recovers: numbering continues, orphans are replaced, info/stats become exact
    with make_writer(tmp_path) as w:
        assert write_episode(w, episode_data(7, 4)) == n
    ds = LeRobotDataset(tmp_path, verify="full")
    assert ds.episode_indices == list(range(n + 1))
    assert_episode_equal(ds.episode(n), episode_data(7, 4))
    info = json.loads((tmp_path / "meta/info.json").read_text())
    total = sum(lens[:n]) + 4
    assert (info["total_episodes"], info["total_frames"]) == (n + 1, total)
    assert all_rows(tmp_path).column("index").to_pylist() == list(range(total))
    stats = json.loads((tmp_path / "meta/stats.json").read_text())
    states = np.concatenate([states, episode_data(7, 4)["states"]])
    np.testing.assert_allclose(stats["observation.state"]["mean"], states.mean(0), rtol=1e-6)
    assert stats["index"]["count"] == [total]


class _no_warning:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error", DatasetWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def test_reader_accepts_multi_episode_files(tmp_path: Path) -> None:
    """LeRobot itself packs many episodes per file; read such a layout and merge it back to ours."""
    src, multi = tmp_path / "src", tmp_path / "multi"
    data = [episode_data(s, n) for s, n in ((30, 5), (31, 7))]
    with make_writer(src) as w:
        for d in data:
            write_episode(w, d)
    shutil.copytree(src / "meta", multi / "meta")
    shutil.rmtree(multi / "meta/episodes")
    tables = [pq.read_table(src / f"data/chunk-000/file-{i:03d}.parquet") for i in range(2)]
    (multi / "data/chunk-000").mkdir(parents=True)
    pq.write_table(pa.concat_tables(tables), multi / "data/chunk-000/file-000.parquet")
    for cam, (h, w_) in CAMS.items():
        path = multi / f"videos/observation.images.{cam}/chunk-000/file-000.mp4"
        path.parent.mkdir(parents=True)
        enc = VideoEncoder(path, FPS, h, w_, "libx264", codec_options("libx264", 18, 2))
        for d in data:
            for img in d["frames"][cam]:
                enc.write(img)
        enc.finish()
    metas = [pq.read_table(src / f"meta/episodes/chunk-000/file-{i:03d}.parquet") for i in range(2)]
    table = pa.concat_tables(metas).to_pydict()
    table["data/file_index"] = [0, 0]
    t0 = 5 / FPS
    for cam in CAMS:
        key = f"videos/observation.images.{cam}"
        table[f"{key}/file_index"] = [0, 0]
        table[f"{key}/from_timestamp"] = [0.0, t0]
        table[f"{key}/to_timestamp"] = [t0, t0 + 7 / FPS]
    (multi / "meta/episodes/chunk-000").mkdir(parents=True)
    schema = metas[0].schema.remove_metadata()  # LeRobot records no content hashes
    pq.write_table(pa.table(table, schema=schema), multi / "meta/episodes/chunk-000/file-000.parquet")

    ds = LeRobotDataset(multi, verify="full")
    for i, d in enumerate(data):
        assert_episode_equal(ds.episode(i), d)
    assert merge_datasets([multi], tmp_path / "ours") == [0, 1]  # shared videos are cut by re-encoding
    ours = LeRobotDataset(tmp_path / "ours", verify="full")
    for i, d in enumerate(data):
        assert_episode_equal(ours.episode(i), d, frame_tol=4.0)
