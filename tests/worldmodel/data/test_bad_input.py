"""Corrupt, truncated or inconsistent files raise DatasetError naming the file; skip mode keeps the rest."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from wm_data_helpers import CAMS, FPS, episode_data, length_of, make_writer, strip_content_hashes, write_episode

from vjepa_planning.worldmodel.data import DatasetError, DatasetWarning, LeRobotDataset
from vjepa_planning.worldmodel.data.lerobot.video import VideoEncoder, codec_options
from vjepa_planning.worldmodel.data.lerobot import reader as lerobot_reader
from vjepa_planning.worldmodel.data.lerobot.format import EPISODE_EXTRAS_KEY

DATA1 = "data/chunk-000/file-001.parquet"
FRONT1 = "videos/observation.images.front/chunk-000/file-001.mp4"
META1 = "meta/episodes/chunk-000/file-001.parquet"
LEN1 = length_of(1)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template")
    with make_writer(root) as w:
        for s in range(3):
            write_episode(w, episode_data(s, length_of(s)))
    return root


@pytest.fixture
def ds_root(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(template, root)
    return root


# ---- mutations ------------------------------------------------------------------------------------


def truncate(rel: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        p = root / rel
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])

    return f


def garbage(rel: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        (root / rel).write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())

    return f


def delete(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).unlink()


def edit_table(rel: str, fn: Callable[[pa.Table], pa.Table]) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        pq.write_table(fn(pq.read_table(root / rel)), root / rel)

    return f


def set_column(t: pa.Table, name: str, arr: pa.Array) -> pa.Table:
    return t.set_column(t.column_names.index(name), name, arr)


def state_rows(t: pa.Table) -> list[list[float]]:
    return t.column("observation.state").to_pylist()


def short_video(root: Path, frames: int = LEN1 - 1) -> None:
    h, w = CAMS["front"]
    enc = VideoEncoder(root / FRONT1, FPS, h, w, "libx264", codec_options("libx264", 20, 8))
    for t in range(frames):
        enc.write(np.full((h, w, 3), 100, np.uint8))
    enc.finish()


EPISODE_CASES = {
    "truncated data parquet": (truncate(DATA1), DATA1, "cannot read data file"),
    "garbage data parquet": (garbage(DATA1), DATA1, "cannot read data file"),
    "missing data parquet": (delete(DATA1), DATA1, "missing"),
    "truncated mp4": (truncate(FRONT1), FRONT1, "cannot open video"),
    "garbage mp4": (garbage(FRONT1), FRONT1, "cannot open video"),
    "missing mp4": (delete(FRONT1), FRONT1, "missing"),
    "missing column": (edit_table(DATA1, lambda t: t.drop_columns(["action"])), DATA1, "missing column 'action'"),
    "wrong dtype": (
        edit_table(DATA1, lambda t: set_column(t, "action", t.column("action").cast(pa.list_(pa.float64(), 7)))),
        DATA1,
        "'action' has dtype double, expected float32",
    ),
    "wrong scalar dtype": (
        edit_table(DATA1, lambda t: set_column(t, "timestamp", t.column("timestamp").cast(pa.float64()))),
        DATA1,
        "'timestamp' has dtype double",
    ),
    "wrong shape": (
        edit_table(DATA1, lambda t: set_column(t, "observation.state", pa.array([r[:6] for r in state_rows(t)], pa.list_(pa.float32(), 6)))),
        DATA1,
        r"'observation.state' has shape \(6,\), expected \(7,\)",
    ),
    "ragged list": (
        edit_table(DATA1, lambda t: set_column(t, "observation.state", pa.array([r[:6] if i == 2 else r for i, r in enumerate(state_rows(t))], pa.list_(pa.float32())))),
        DATA1,
        r"rows of length 6, expected shape \(7,\)",
    ),
    "null value": (
        edit_table(DATA1, lambda t: set_column(t, "observation.state", pa.array([None if i == 1 else r for i, r in enumerate(state_rows(t))], pa.list_(pa.float32(), 7)))),
        DATA1,
        "null",
    ),
    "extra data row": (edit_table(DATA1, lambda t: pa.concat_tables([t, t.slice(0, 1)])), DATA1, f"has {LEN1 + 1} rows"),
    "video shorter than data": (short_video, FRONT1, f"video has {LEN1 - 1} frames but the episode has {LEN1} data rows"),
    "truncated episode meta": (truncate(META1), META1, "cannot read episode metadata"),
    "meta missing column": (edit_table(META1, lambda t: t.drop_columns(["length"])), META1, r"missing column\(s\) \['length'\]"),
}


@pytest.mark.parametrize("case", list(EPISODE_CASES))
def test_bad_episode_raises_naming_the_file(ds_root: Path, case: str) -> None:
    mutate, rel, problem = EPISODE_CASES[case]
    mutate(ds_root)
    with pytest.raises(DatasetError, match=problem) as err:
        LeRobotDataset(ds_root, verify="full")
    assert err.value.path == str(ds_root / rel)
    assert str(err.value).startswith(str(ds_root / rel) + ": ")


@pytest.mark.parametrize("case", list(EPISODE_CASES))
def test_skip_mode_keeps_good_episodes(ds_root: Path, case: str) -> None:
    mutate, rel, _ = EPISODE_CASES[case]
    mutate(ds_root)
    with pytest.warns(DatasetWarning, match=r"skipped 1 bad episode\(s\):\n  episode 1: .*file-001"):
        ds = LeRobotDataset(ds_root, on_error="skip", verify="full")
    assert ds.episode_indices == [0, 2]
    assert [s.episode_index for s in ds.skipped] == [1] and rel in ds.skipped[0].reason
    for i in (0, 2):
        d = episode_data(i, length_of(i))
        ep = ds.episode(i)
        np.testing.assert_array_equal(ep.states, d["states"])
        assert np.abs(ep.images["front"].astype(float) - d["frames"]["front"]).mean() < 3
    with pytest.raises(KeyError, match="episode 1"):
        ds.episode(1)
    # stats are recomputed from the readable episodes only
    states = np.concatenate([episode_data(i, length_of(i))["states"] for i in (0, 2)]).astype(np.float64)
    with pytest.warns(DatasetWarning, match="stats recomputed from the 2 readable episodes"):
        np.testing.assert_allclose(ds.stats["observation.state"]["mean"], states.mean(0), rtol=1e-6)


def test_fast_open_defers_decode_checks_to_load(ds_root: Path) -> None:
    strip_content_hashes(ds_root)  # written elsewhere: no content hashes for the fast open to check
    EPISODE_CASES["ragged list"][0](ds_root)
    ds = LeRobotDataset(ds_root)  # schema is fine: only loading the rows finds the ragged one
    with pytest.raises(DatasetError, match="rows of length 6") as err:
        ds.episode(1)
    assert err.value.path == str(ds_root / DATA1)


@pytest.mark.parametrize("frames", [LEN1 - 2, LEN1 + 3])
def test_decoded_frame_count_must_match_data_rows(ds_root: Path, monkeypatch: pytest.MonkeyPatch, frames: int) -> None:
    strip_content_hashes(ds_root)  # written elsewhere: no content hashes for the fast open to check
    short_video(ds_root, frames)
    monkeypatch.setattr(lerobot_reader, "probe_video", lambda *a, **k: None)  # pretend the header looked fine
    ds = LeRobotDataset(ds_root)
    with pytest.raises(DatasetError, match=f"decoded {frames} frames but episode 1 has {LEN1} data rows") as err:
        ds.episode(1).images["front"]
    assert err.value.path == str(ds_root / FRONT1)
    assert ds.episode_frames(0, "front").shape[0] == length_of(0)


def flip_bytes(rel: str, count: int = 2048) -> Callable[[Path], None]:
    """Randomise `count` bytes in the middle of a file: it may still parse, and decode to other values."""

    def f(root: Path) -> None:
        p = root / rel
        b = bytearray(p.read_bytes())
        mid = len(b) // 2 - count // 2
        b[mid : mid + count] = np.random.default_rng(1).integers(0, 256, count, dtype=np.uint8).tobytes()
        p.write_bytes(bytes(b))

    return f


@pytest.mark.parametrize("rel", [FRONT1, DATA1])
def test_a_changed_file_is_caught_by_its_content_hash(ds_root: Path, rel: str) -> None:
    flip_bytes(rel, 2048 if rel == FRONT1 else 16)(ds_root)
    for verify in ("fast", "full"):
        with pytest.raises(DatasetError) as err:
            LeRobotDataset(ds_root, verify=verify)
        assert err.value.path == str(ds_root / rel)
    ds = LeRobotDataset(ds_root, verify="meta")  # opted out at open: loading the episode still checks
    with pytest.raises(DatasetError, match="sha256 recorded when episode 1 was committed|cannot|decode|rows|null"):
        ds.episode(1).images["front"] if rel == FRONT1 else ds.episode(1)
    ds.episode(0)  # the others load


def test_the_writer_records_a_content_hash_for_every_file(ds_root: Path) -> None:
    import hashlib

    table = pq.read_table(ds_root / META1)
    extras = json.loads(table.schema.metadata[EPISODE_EXTRAS_KEY])["1"]["sha256"]
    for rel, key in ((DATA1, "data"), (FRONT1, "videos/observation.images.front")):
        assert extras[key] == hashlib.sha256((ds_root / rel).read_bytes()).hexdigest()
    assert not [c for c in table.column_names if c.endswith("/sha256") or c.startswith("info/")]  # LeRobot's columns only


def test_older_files_with_hash_and_info_columns_are_still_checked(ds_root: Path) -> None:
    """Before EPISODE_EXTRAS_KEY, our writer kept the extras as columns: such datasets still verify."""
    table = pq.read_table(ds_root / META1)
    extras = json.loads(table.schema.metadata[EPISODE_EXTRAS_KEY])["1"]
    for key, digest in extras["sha256"].items():
        table = table.append_column(f"{key}/sha256", pa.array([digest]))
    table = table.append_column("info/policy", pa.array(["oracle"])).replace_schema_metadata(None)
    pq.write_table(table, ds_root / META1)
    assert LeRobotDataset(ds_root).episode_info(1) == {"policy": "oracle"}
    (ds_root / DATA1).write_bytes((ds_root / DATA1).read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(DatasetError, match="sha256 recorded when episode 1 was committed|cannot"):
        LeRobotDataset(ds_root, verify="fast")


GLOBAL_CASES = {
    "info not json": (lambda r: (r / "meta/info.json").write_text("{not json"), "meta/info.json", "not valid JSON"),
    "info missing": (lambda r: (r / "meta/info.json").unlink(), "meta/info.json", "info.json is missing"),
    "info lacks keys": (
        lambda r: (r / "meta/info.json").write_text(json.dumps({"codebase_version": "v3.0", "fps": 4})),
        "meta/info.json",
        "lacks keys",
    ),
    "info old version": (
        lambda r: (r / "meta/info.json").write_text(
            json.dumps({**json.loads((r / "meta/info.json").read_text()), "codebase_version": "v2.1"})
        ),
        "meta/info.json",
        "not v3",
    ),
    "tasks truncated": (truncate("meta/tasks.parquet"), "meta/tasks.parquet", "cannot read tasks file"),
}


@pytest.mark.parametrize("case", list(GLOBAL_CASES))
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_bad_global_metadata_always_raises(ds_root: Path, case: str, on_error: str) -> None:
    mutate, rel, problem = GLOBAL_CASES[case]
    mutate(ds_root)
    with pytest.raises(DatasetError, match=problem) as err:
        LeRobotDataset(ds_root, on_error=on_error)
    assert err.value.path == str(ds_root / rel)


def test_bad_stats_json_names_the_file(ds_root: Path) -> None:
    (ds_root / "meta/stats.json").write_text("[1, 2")
    ds = LeRobotDataset(ds_root)
    with pytest.raises(DatasetError, match="not valid JSON") as err:
        ds.stats
    assert err.value.path == str(ds_root / "meta/stats.json")


def test_writer_refuses_a_corrupt_info_json(ds_root: Path) -> None:
    (ds_root / "meta/info.json").write_text("garbage")
    with pytest.raises(DatasetError, match="info.json is not valid JSON"):
        make_writer(ds_root)


def test_orphans_and_temp_files_are_ignored(ds_root: Path) -> None:
    """Files a crashed commit could leave behind never show up as episodes."""
    shutil.copy(ds_root / DATA1, ds_root / "data/chunk-000/file-003.parquet")
    (ds_root / ".tmp" / "tmp-999999-x-y-front.mp4").write_bytes(b"partial")
    ds = LeRobotDataset(ds_root, verify="full")
    assert ds.episode_indices == [0, 1, 2]
