"""Frozen-encoder feature cache: computed once, reused, invalidated by any encoder / preprocessing change."""

import numpy as np
import pytest
import torch

from vjepa_planning.worldmodel.data.feature_cache import FeatureCache, build_feature_cache, cache_key_spec, default_frame_encoder
from vjepa_planning.worldmodel.data.lerobot import DatasetError, DatasetWriter, LeRobotDataset
from vjepa_planning.worldmodel.encoder import build_encoder
from vjepa_planning.worldmodel.world_model import VJEPAFrameEncoder


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


def make_dataset(root, lengths=(5, 7, 3), size=40):
    rng = np.random.default_rng(0)
    with DatasetWriter(root, 4, {"exterior": (size, size)}, fsync=False) as w:
        for L in lengths:
            for _ in range(L):
                img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                w.add_frame(rng.normal(size=7).astype(np.float32), np.zeros(7, np.float32), {"exterior": img}, "t")
            w.save_episode()
    return LeRobotDataset(root)


def counting(frame_encoder):
    calls = []
    frame_encoder.encoder.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    return calls


def tiny_encoder(seed=0, img_size=32):
    torch.manual_seed(seed)
    return build_encoder("vit_micro", patch_size=8, img_size=img_size)


def test_features_equal_the_planners_encoding_and_are_reused(tmp_path):
    ds = make_dataset(tmp_path / "d")
    fe = default_frame_encoder(tiny_encoder())
    calls = counting(fe)
    cache = build_feature_cache(ds, fe, "exterior", progress=False)
    assert sum(calls) == 15  # every frame encoded once
    assert cache.dir.parent == tmp_path / "d" / ".feature_cache"
    z = cache.load(1)
    assert z.dtype == np.float16 and z.shape == (7, 16, 64)
    ref = fe.encode(ds.episode_frames(1, "exterior"))  # what the planner computes: [T, N, D] layer-normed
    np.testing.assert_allclose(z.astype(np.float32), ref.numpy(), atol=2e-2, rtol=1e-2)
    calls.clear()
    cache2 = build_feature_cache(ds, fe, "exterior", progress=False)
    assert calls == [] and cache2.dir == cache.dir  # second time: nothing encoded
    assert (cache.dir / "key.json").exists()


def test_cache_is_invalidated_by_preprocessing_weights_and_camera(tmp_path):
    ds = make_dataset(tmp_path / "d", lengths=(3,))
    enc = tiny_encoder()
    key = FeatureCache.for_encoder(ds.root, default_frame_encoder(enc), "exterior").key
    other_size = VJEPAFrameEncoder(tiny_encoder(), img_size=40)
    other_interp = VJEPAFrameEncoder(tiny_encoder(), interpolation="bicubic")
    other_std = VJEPAFrameEncoder(tiny_encoder(), std=(0.5, 0.5, 0.5))
    other_weights = default_frame_encoder(tiny_encoder(seed=1))
    keys = {FeatureCache.for_encoder(ds.root, fe, "exterior").key
            for fe in (other_size, other_interp, other_std, other_weights)}
    assert key not in keys and len(keys) == 4
    assert FeatureCache.for_encoder(ds.root, default_frame_encoder(enc), "wrist").key != key
    # a changed preprocessing is encoded again, into its own folder
    build_feature_cache(ds, default_frame_encoder(enc), "exterior", progress=False)
    calls = counting(other_size)
    c2 = build_feature_cache(ds, other_size, "exterior", progress=False)
    assert sum(calls) == 3 and c2.key != key
    spec = cache_key_spec(other_size, "exterior")
    assert spec["preprocessing"]["img_size"] == 40 and spec["preprocessing"]["tubelet_fill"] == "repeat x2"


def test_a_stale_or_partial_file_is_recomputed_and_writes_are_atomic(tmp_path, monkeypatch):
    ds = make_dataset(tmp_path / "d", lengths=(4, 4))
    fe = default_frame_encoder(tiny_encoder())
    cache = build_feature_cache(ds, fe, "exterior", progress=False)
    np.save(cache.path(0), np.zeros((2, 16, 64), np.float16))  # wrong length (e.g. the episode was rewritten)
    calls = counting(fe)
    build_feature_cache(ds, fe, "exterior", progress=False)
    assert sum(calls) == 4 and cache.load(0).shape[0] == 4

    def boom(f, arr):
        f.write(b"partial")
        raise OSError("disk full")

    cache.path(1).unlink()
    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        build_feature_cache(ds, fe, "exterior", progress=False)
    assert not cache.path(1).exists()  # nothing half-written under the real name ...
    assert sorted(p.name for p in cache.dir.iterdir()) == ["episode_000000.npy", "key.json"]  # ... nor left behind


def test_missing_camera_is_named(tmp_path):
    ds = make_dataset(tmp_path / "d", lengths=(3,))
    with pytest.raises(DatasetError, match="no camera 'wrist'"):
        build_feature_cache(ds, default_frame_encoder(tiny_encoder()), "wrist", progress=False)


def test_ranks_share_the_work(tmp_path):
    ds = make_dataset(tmp_path / "d", lengths=(3, 3, 3))
    fe = default_frame_encoder(tiny_encoder())
    calls = counting(fe)
    build_feature_cache(ds, fe, "exterior", rank=1, world_size=2, progress=False)
    assert sum(calls) == 3  # episode 1 only
    c = build_feature_cache(ds, fe, "exterior", rank=0, world_size=2, progress=False)
    assert sum(calls) == 9 and all(c.has(ep, 3) for ep in range(3))
