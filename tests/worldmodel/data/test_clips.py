"""Clip sampling for post-training: split, windows, padding, resumable sharded sampler, named errors."""

import numpy as np
import pytest

from vjepa_planning.worldmodel.data.clips import (
    ClipSampler,
    EpisodeArrays,
    check_dataset,
    clip_windows,
    collate,
    split_episodes,
    usable_episodes,
)
from vjepa_planning.worldmodel.data.lerobot import DatasetError, DatasetWriter, LeRobotDataset


def arrays(index, length, n=4, d=3):
    t = np.arange(length, dtype=np.float32)
    return EpisodeArrays(index, np.repeat(t[:, None], 7, 1) + 100 * index, np.repeat(t[:, None], 7, 1) * 0.1,
                         np.broadcast_to(t[:, None, None], (length, n, d)).astype(np.float16) + index)


def make_dataset(root, lengths, size=16):
    with DatasetWriter(root, 4, {"exterior": (size, size)}, fsync=False) as w:
        for L in lengths:
            for _ in range(L):
                w.add_frame(np.zeros(7, np.float32), np.zeros(7, np.float32),
                            {"exterior": np.zeros((size, size, 3), np.uint8)}, "t")
            w.save_episode()
    return LeRobotDataset(root)


def test_split_is_by_episode_seeded_disjoint_and_stable_as_data_grows():
    train, val = split_episodes(range(200), 0.1, seed=0)
    assert not set(train) & set(val) and sorted(train + val) == list(range(200))
    assert 8 <= len(val) <= 35
    assert split_episodes(range(200), 0.1, seed=0) == (train, val)
    assert split_episodes(range(200), 0.1, seed=1)[1] != val
    _, val_more = split_episodes(range(400), 0.1, seed=0)
    assert set(val) == set(val_more) & set(range(200))  # adding episodes never moves old ones between splits
    tr, va = split_episodes([3, 7], 0.1, seed=0)
    assert len(tr) == 1 and len(va) == 1  # tiny datasets still get a held-out episode
    assert split_episodes([5], 0.1, seed=0) == ([5], [])


def test_windows_cover_every_start_and_short_episodes_become_one_short_clip():
    eps = [arrays(0, 10), arrays(1, 5), arrays(2, 8)]
    w = clip_windows(eps, 8)
    assert w.tolist() == [[0, 0, 8], [0, 1, 8], [0, 2, 8], [1, 0, 5], [2, 0, 8]]
    assert clip_windows(eps, 8, stride=2).tolist() == [[0, 0, 8], [0, 2, 8], [1, 0, 5], [2, 0, 8]]


def test_collate_pads_after_the_real_frames_and_marks_them_invalid():
    eps = [arrays(0, 10), arrays(1, 5)]
    b = collate(eps, np.array([[0, 2, 8], [1, 0, 5]]), 8)
    assert b.features.shape == (2, 8, 4, 3) and b.states.shape == (2, 8, 7) and b.actions.shape == (2, 8, 7)
    assert b.valid[0].all() and b.valid[1].tolist() == [True] * 5 + [False] * 3
    assert b.features[0, :, 0, 0].tolist() == [2, 3, 4, 5, 6, 7, 8, 9]  # frames 2..9 of episode 0
    assert b.states[1, :, 0].tolist() == [100, 101, 102, 103, 104, 104, 104, 104]
    assert (b.actions[1, 5:] == 0).all()


def test_sampler_resumes_exactly_and_shards_the_global_batch():
    a = ClipSampler(23, batch_size=4, seed=3)
    seq = [a.next_indices().tolist() for _ in range(12)]  # crosses epochs
    b = ClipSampler(23, batch_size=4, seed=3)
    for _ in range(5):
        b.next_indices()
    c = ClipSampler(23, batch_size=4, seed=3)
    c.load_state_dict(b.state_dict())
    assert [c.next_indices().tolist() for _ in range(7)] == seq[5:]
    first_epoch = [i for batch in seq[:6] for i in batch][:23]
    assert sorted(first_epoch) == list(range(23))  # every window once per epoch
    r0, r1 = ClipSampler(23, 2, 3, rank=0, world_size=2), ClipSampler(23, 2, 3, rank=1, world_size=2)
    for k in range(6):
        merged = sorted(r0.next_indices().tolist() + r1.next_indices().tolist())
        assert merged == sorted(seq[k])  # 2 ranks x 2 = the same global batches as 1 rank x 4
    with pytest.raises(ValueError, match="data or split changed"):
        ClipSampler(24, 4, 3).load_state_dict(b.state_dict())


def test_bad_datasets_raise_errors_that_name_the_problem(tmp_path, caplog):
    ds = make_dataset(tmp_path / "a", [2, 6, 1])
    with pytest.raises(DatasetError, match="required camera 'wrist' is missing"):
        check_dataset(ds, "wrist")
    check_dataset(ds, "exterior")
    with caplog.at_level("WARNING"):
        assert usable_episodes(ds, 3) == [1]
    assert "skipping 2 episode(s) shorter than 3 frames: 0, 2" in caplog.text
    short = make_dataset(tmp_path / "b", [2, 2])
    with pytest.raises(DatasetError, match="every episode is too short.*at least 3 frames.*longest has 2"):
        usable_episodes(short, 3)
