"""merge-datasets: two small datasets in, one renumbered dataset out; bad input is one line naming it."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_datasets import write_square_dataset

from vjepa_planning.apps import merge_datasets
from vjepa_planning.worldmodel.data.lerobot import LeRobotDataset


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> list:
    root = tmp_path_factory.mktemp("parts")
    write_square_dataset(root / "a", [3, 4], seed=0, task="push")
    write_square_dataset(root / "b", [5], seed=1, task="pull")
    return [root / "a", root / "b"]


@pytest.mark.parametrize("copy", [False, True])
def test_merges_parts_in_order(parts, tmp_path, capsys, copy: bool) -> None:
    out = tmp_path / "merged"
    assert merge_datasets.main([*map(str, parts), "--out", str(out), *(["--copy"] if copy else [])]) == 0
    assert capsys.readouterr().out.strip() == f"merged 3 episode(s) from 2 dataset(s) into {out}"

    merged = LeRobotDataset(out, verify="full")
    sources = [ep for p in parts for ep in LeRobotDataset(p)]
    assert merged.num_episodes == 3 and merged.tasks == ["push", "pull"]
    for i, src in enumerate(sources):
        ep = merged.episode(i)
        assert ep.index == i and ep.tasks == src.tasks
        np.testing.assert_array_equal(ep.states, src.states)
        np.testing.assert_array_equal(ep.actions, src.actions)
        np.testing.assert_array_equal(ep.extras["observation.ee_pos"], src.extras["observation.ee_pos"])
        np.testing.assert_array_equal(ep.images["exterior"], src.images["exterior"])  # the same video file
    video = "videos/observation.images.exterior/chunk-000/file-{:03d}.mp4"
    linked = (out / video.format(2)).stat().st_ino == (parts[1] / video.format(0)).stat().st_ino
    assert linked != copy  # hard-linked unless --copy


def test_bad_input_is_one_line_naming_it(parts, tmp_path, capsys) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    cases = {
        "not_a_dataset": ([str(parts[0]), str(tmp_path)], tmp_path / "out", f"{tmp_path}/meta/info.json"),
        "out_not_empty": ([str(parts[0])], tmp_path / "full", f"--out {tmp_path / 'full'} already exists"),
    }
    for argv, out, named in cases.values():
        capsys.readouterr()
        assert merge_datasets.main([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("merge-datasets: error: ") and named in err, err
    assert not (tmp_path / "out").exists()  # a bad part is found before anything is written
