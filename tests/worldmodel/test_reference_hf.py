"""Our encoder vs Hugging Face transformers' ``VJEPA2Model`` (independent re-implementation of the
official code): a tiny random model saved with ``save_pretrained`` must load strictly into ours and
give the same patch features. This pins the RoPE frequency layout, token order and q/k/v fusion.

Needs ``pip install "transformers>=4.53"`` (pure Python; it does not pull torch or torchvision).
"""

import json

import pytest
import torch

from vjepa_planning.worldmodel.checkpoints import encoder_args_from_hf_config, hf_encoder_state_dict, load_hf_encoder

transformers = pytest.importorskip("transformers", reason="pip install 'transformers>=4.53' for the HF reference test")
if not hasattr(transformers, "VJEPA2Model"):
    pytest.skip("transformers too old: VJEPA2Model arrived in 4.53", allow_module_level=True)


def _tiny_hf_model(**over):
    cfg = dict(
        patch_size=8,
        crop_size=32,
        frames_per_clip=4,
        tubelet_size=2,
        hidden_size=96,
        num_attention_heads=2,
        num_hidden_layers=2,
        mlp_ratio=4.0,
        pred_hidden_size=32,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=1,
        num_pooler_layers=1,
    )
    cfg.update(over)
    torch.manual_seed(0)
    model = transformers.VJEPA2Model(transformers.VJEPA2Config(**cfg)).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():  # every weight random, LayerNorm gains around 1
            gain = 1.0 if ("norm" in name and name.endswith("weight")) else 0.0
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + gain)
    return model


@pytest.mark.parametrize("over", [{}, {"hidden_size": 120, "num_attention_heads": 3, "frames_per_clip": 2}])
def test_hf_folder_loads_into_our_encoder_with_equal_features(tmp_path, over):
    hf = _tiny_hf_model(**over)
    hf.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.safetensors").is_file()

    ours = load_hf_encoder(tmp_path).eval()
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert ours.arch == encoder_args_from_hf_config(cfg)

    T = cfg["frames_per_clip"]
    video = torch.randn(2, T, 3, 32, 32, generator=torch.Generator().manual_seed(2))  # HF layout [B, T, C, H, W]
    with torch.no_grad():
        ref = hf(pixel_values_videos=video, skip_predictor=True).last_hidden_state
        out = ours(video.permute(0, 2, 1, 3, 4))  # ours: [B, C, T, H, W]
    assert out.shape == ref.shape == (2, (T // 2) * 16, cfg["hidden_size"])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_hf_key_mapping_fuses_qkv_in_query_key_value_order():
    hf = _tiny_hf_model()
    sd = hf_encoder_state_dict({f"vjepa2.{k}": v for k, v in hf.state_dict().items()})  # classifier-style prefix
    layer = hf.encoder.layer[1].attention
    torch.testing.assert_close(
        sd["blocks.1.attn.qkv.weight"], torch.cat([layer.query.weight, layer.key.weight, layer.value.weight])
    )
    assert not any(k.startswith(("predictor", "pooler")) for k in sd)
    assert {"patch_embed.proj.weight", "norm.weight", "blocks.0.mlp.fc2.bias"} <= set(sd)
