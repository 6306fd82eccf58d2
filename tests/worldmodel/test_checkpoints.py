"""Checkpoint converters (pure functions on fake dicts), our self-describing safetensors, strict errors."""

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vjepa_planning.worldmodel import checkpoints as ck
from vjepa_planning.worldmodel.encoder import build_encoder
from vjepa_planning.worldmodel.predictor import build_predictor


def test_strip_prefixes():
    sd = {"module.backbone.blocks.0.x": 1, "module.norm.weight": 2, "backbone.patch_embed.proj.bias": 3, "plain": 4}
    assert ck.strip_prefixes(sd) == {"blocks.0.x": 1, "norm.weight": 2, "patch_embed.proj.bias": 3, "plain": 4}
    with pytest.raises(ValueError, match="two checkpoint keys map to 'a'"):
        ck.strip_prefixes({"module.a": 1, "a": 2})


def test_official_encoder_dict_picks_the_requested_copy_and_drops_pos_embed():
    enc = {"module.backbone.norm.weight": torch.ones(3), "module.backbone.pos_embed": torch.zeros(1, 4, 3)}
    tgt = {"module.backbone.norm.weight": torch.full((3,), 2.0)}
    ckpt = {"encoder": enc, "target_encoder": tgt, "opt": {"state": {}}, "epoch": 1}
    assert ck.official_encoder_state_dict(ckpt)["norm.weight"].sum() == 3  # default: "encoder", like upstream's hub
    assert ck.official_encoder_state_dict(ckpt, "target_encoder")["norm.weight"].sum() == 6
    assert "pos_embed" not in ck.official_encoder_state_dict(ckpt)
    with pytest.raises(KeyError, match="no 'ema' entry"):
        ck.official_encoder_state_dict(ckpt, "ema")


def test_arch_is_recovered_from_official_weight_shapes():
    enc = build_encoder("vit_micro", patch_size=8, img_size=32)
    args = ck.encoder_args_from_state_dict(enc.state_dict(), num_heads=2, img_size=32)
    assert args == enc.arch
    pred = build_predictor("ac_micro", embed_dim=64, grid_size=(2, 3))
    assert ck.predictor_args_from_state_dict(pred.state_dict(), grid_size=[2, 3], num_heads=2) == pred.arch
    with pytest.raises(ValueError, match="pass num_heads"):
        ck.encoder_args_from_state_dict(enc.state_dict())


def test_official_style_file_round_trip(tmp_path):
    enc = build_encoder("vit_micro", patch_size=8, img_size=32)
    pred = build_predictor("ac_micro", embed_dim=64, grid_size=4)
    ckpt = {
        "encoder": {f"module.backbone.{k}": v for k, v in enc.state_dict().items()},
        "predictor": {f"module.{k}": v for k, v in pred.state_dict().items()},
        "epoch": 5,
    }
    torch.save(ckpt, tmp_path / "ac.pt")
    enc2 = ck.load_official_encoder(tmp_path / "ac.pt", img_size=32, num_heads=2)
    pred2 = ck.load_official_predictor(tmp_path / "ac.pt", grid_size=4, num_heads=2)
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(enc2(x), enc(x))
    assert all(torch.equal(a, b) for a, b in zip(pred.state_dict().values(), pred2.state_dict().values(), strict=True))


def test_our_safetensors_are_self_describing(tmp_path):
    pred = build_predictor("ac_micro", embed_dim=64, grid_size=(2, 3), use_extrinsics=True)
    ck.save_module(pred, tmp_path / "p.safetensors", extra={"trained_steps": 10})
    sd, meta = ck.read_safetensors(tmp_path / "p.safetensors")
    assert meta["kind"] == "predictor" and meta["arch"] == pred.arch and meta["extra"] == {"trained_steps": 10}
    assert ck.read_metadata(tmp_path / "p.safetensors") == meta
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "p.safetensors").st_mode & 0o777 == 0o666 & ~umask  # shareable, not owner-only
    loaded = ck.load_module(tmp_path / "p.safetensors")
    assert loaded.arch == pred.arch and not any(p.is_meta for p in loaded.parameters())
    assert all(torch.equal(a, b) for a, b in zip(pred.state_dict().values(), loaded.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="holds a predictor, not a encoder"):
        ck.load_module(tmp_path / "p.safetensors", kind="encoder")


def test_foreign_safetensors_are_rejected(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not a vjepa-planning/1 file"):
        ck.read_safetensors(tmp_path / "x.safetensors")


def test_wrong_size_checkpoint_lists_missing_unexpected_and_shapes(tmp_path):
    small = build_encoder("vit_micro", patch_size=8, img_size=32)  # 64 wide, 2 blocks
    target = build_encoder("vit_mini", patch_size=8, img_size=32)  # 192 wide, 6 blocks
    sd = dict(small.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(ck.CheckpointMismatchError) as info:
        ck.load_strict(target, sd)
    err = info.value
    msg = str(err)
    assert "blocks.5.attn.qkv.weight" in err.missing and "extra.weight" in err.unexpected
    assert "norm.weight: (64,) vs (192,)" in err.shapes
    assert "missing keys (" in msg and "unexpected keys (1)" in msg and "shape mismatches" in msg
    assert "... and" in msg  # long lists are truncated, with a count


def test_hf_config_mapping_rejects_unsupported_activation():
    with pytest.raises(ValueError, match="hidden_act='silu'"):
        ck.encoder_args_from_hf_config({"hidden_act": "silu"})
    args = ck.encoder_args_from_hf_config(
        {
            "hidden_size": 1408,
            "num_hidden_layers": 40,
            "num_attention_heads": 22,
            "mlp_ratio": 48 / 11,
            "crop_size": 256,
            "patch_size": 16,
        }
    )
    assert args["embed_dim"] == 1408 and args["img_size"] == 256


def test_hf_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        ck.load_hf_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({}))
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        ck.load_hf_encoder(tmp_path)


# ---- integrity: the content hash ------------------------------------------------------------------


def _saved_predictor(tmp_path):
    pred = build_predictor("ac_micro", embed_dim=64, grid_size=(2, 3), use_extrinsics=True)
    path = tmp_path / "p.safetensors"
    ck.save_module(pred, path)
    return pred, path


def _tensor_data_start(path) -> int:
    import struct

    with open(path, "rb") as f:
        return 8 + struct.unpack("<Q", f.read(8))[0]


def test_flipped_sign_bits_are_refused_naming_the_file(tmp_path, caplog):
    _, path = _saved_predictor(tmp_path)
    raw = bytearray(path.read_bytes())
    start = _tensor_data_start(path)
    rng = np.random.default_rng(0)
    for i in rng.choice((len(raw) - start) // 4, 2000, replace=False):  # the sign bit of 2000 float32s
        raw[start + 4 * i + 3] ^= 0x80
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"p\.safetensors: its weights do not match the content hash"):
        ck.load_module(path)
    ck.load_module(path, verify=False)  # the fast path skips the check, and says so
    assert "without checking its content hash" in caplog.text


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_files_are_one_error_naming_the_file(tmp_path, damage):
    _, path = _saved_predictor(tmp_path)
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) // 2], "garbage": os.urandom(512), "empty": b""}[damage])
    with pytest.raises(ValueError, match=r"checkpoint .*p\.safetensors"):
        ck.load_module(path)


def test_a_file_without_a_hash_loads_with_a_warning(tmp_path, caplog):
    from safetensors.torch import save_file

    pred, path = _saved_predictor(tmp_path)
    meta = {k: v for k, v in ck.read_metadata(path).items() if k != "content_sha256"}
    meta = {k: json.dumps(v) if k in ("arch", "extra") else v for k, v in meta.items()}
    save_file({k: v.contiguous() for k, v in pred.state_dict().items()}, str(path), metadata=meta)
    ck.load_module(path)
    assert "records no content hash" in caplog.text


def test_every_shipped_checkpoint_carries_and_passes_its_hash():
    from vjepa_planning.configs.paths import shipped_dir

    files = sorted(shipped_dir().glob("*.safetensors"))
    assert files
    for f in files:
        sd, meta = ck.read_safetensors(f)
        assert meta["content_sha256"] == ck.tensors_sha256(sd)
        assert meta["content_sha256"] in (f.with_suffix(".md")).read_text()  # and its model card says so
