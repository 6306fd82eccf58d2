"""Checkpoint conversion and strict loading.

Converters are pure ``state_dict -> state_dict`` functions (testable on fake dicts);
file reading and model building sit on top of them:

* official V-JEPA 2 / 2-AC ``.pt`` files: a dict with ``encoder``, ``target_encoder``,
  ``predictor`` (plus optimiser state); keys prefixed ``module.`` and sometimes
  ``module.backbone.``. Encoder dicts may carry a ``pos_embed`` that RoPE models never
  use (upstream loads them with strict=False for that reason); we drop it, nothing else.
* Hugging Face ``VJEPA2Model`` folders (``config.json`` + ``model.safetensors`` from
  ``save_pretrained``): separate query / key / value projections are fused into ``qkv``.
* our own safetensors: weights + metadata ``{"format", "kind", "arch", "extra", "content_sha256"}``
  where ``arch`` is the JSON of the module's constructor arguments, so a file builds its model, and
  ``content_sha256`` hashes every tensor (name, dtype, shape, bytes): loading recomputes it, so a flipped
  bit anywhere in the weights is an error naming the file, not a model that plans on noise.

Loading is strict: any missing key, unexpected key or shape difference raises
``CheckpointMismatchError`` listing all three.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn as nn

from vjepa_planning.worldmodel.encoder import VisionTransformer
from vjepa_planning.worldmodel.predictor import ACPredictor
from vjepa_planning.worldmodel.lewm.model import LeWM
from vjepa_planning.worldmodel.readout import GripperReadout

log = logging.getLogger(__name__)

FORMAT = "vjepa-planning/1"
StateDict = dict[str, torch.Tensor]

# heads of the released encoders, by width (not recoverable from weight shapes)
OFFICIAL_HEADS = {1024: 16, 1280: 16, 1408: 22}


class CheckpointMismatchError(ValueError):
    def __init__(self, what: str, missing: list[str], unexpected: list[str], shapes: list[str]):
        self.missing, self.unexpected, self.shapes = missing, unexpected, shapes

        def block(title: str, items: list[str]) -> str:
            shown = "\n    ".join(items[:25]) + (f"\n    ... and {len(items) - 25} more" if len(items) > 25 else "")
            return f"  {title} ({len(items)}):\n    {shown}" if items else f"  {title}: none"

        super().__init__(
            f"checkpoint does not match {what}:\n"
            + "\n".join(
                [
                    block("missing keys", missing),
                    block("unexpected keys", unexpected),
                    block("shape mismatches (key: checkpoint vs model)", shapes),
                ]
            )
        )


# ----------------------------------------------------------------------------- strict loading


def check_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise CheckpointMismatchError unless keys and shapes match ``module`` exactly."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = sorted(
        f"{k}: {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(type(module).__name__, missing, unexpected, shapes)


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Strict ``load_state_dict`` with a readable error. Works on meta-device modules too
    (the tensors are then assigned rather than copied)."""
    check_state_dict(module, state_dict)
    on_meta = any(p.is_meta for p in module.parameters())
    module.load_state_dict(state_dict, strict=True, assign=on_meta)
    return module


def _build_on_meta(cls, **arch):
    with torch.device("meta"):
        return cls(**arch)


# ----------------------------------------------------------------------------- official .pt


def strip_prefixes(state_dict: Mapping[str, torch.Tensor], prefixes=("module.", "backbone.")) -> StateDict:
    """Remove any leading run of the given prefixes from every key ("module.backbone.x" -> "x")."""
    out = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for p in prefixes:
                if key.startswith(p):
                    key, changed = key[len(p) :], True
        if key in out:
            raise ValueError(f"two checkpoint keys map to {key!r} after stripping {prefixes}")
        out[key] = value
    return out


def _pick(ckpt: Mapping, which: str) -> Mapping[str, torch.Tensor]:
    if which in ckpt:
        return ckpt[which]
    if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt  # already a bare state dict
    raise KeyError(f"checkpoint has no {which!r} entry; top-level keys: {sorted(ckpt)[:20]}")


def official_encoder_state_dict(ckpt: Mapping, which: str = "encoder") -> StateDict:
    """Official checkpoint (or one of its sub-dicts) -> our VisionTransformer keys.
    ``which``: "encoder" (what upstream's torch.hub loaders read, for 2 and 2-AC alike) or
    "target_encoder" (the EMA copy, present in training checkpoints)."""
    sd = strip_prefixes(_pick(ckpt, which))
    sd.pop("pos_embed", None)  # sin-cos table of non-RoPE variants; unused with RoPE
    return sd


def official_predictor_state_dict(ckpt: Mapping, which: str = "predictor") -> StateDict:
    """Official 2-AC checkpoint (or its "predictor" sub-dict) -> our ACPredictor keys (same names)."""
    return strip_prefixes(_pick(ckpt, which))


def read_official_checkpoint(path: str | os.PathLike, weights_only: bool = True) -> dict:
    """torch.load an official ``.pt`` on CPU. ``weights_only=True`` refuses pickled code; pass False
    only for files you trust if it fails on non-tensor entries."""
    return torch.load(Path(path), map_location="cpu", weights_only=weights_only)


def encoder_args_from_state_dict(
    sd: Mapping[str, torch.Tensor], num_heads: int | None = None, img_size: int = 256
) -> dict:
    """Recover VisionTransformer args from weight shapes (heads from ``OFFICIAL_HEADS`` unless given)."""
    w = sd["patch_embed.proj.weight"]  # [D, C, tubelet, patch, patch]
    D = w.shape[0]
    depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k)))
    heads = num_heads or OFFICIAL_HEADS.get(D)
    if heads is None:
        raise ValueError(f"cannot tell the number of heads of a {D}-wide encoder: pass num_heads")
    return dict(
        embed_dim=D,
        depth=depth,
        num_heads=heads,
        mlp_ratio=sd["blocks.0.mlp.fc1.weight"].shape[0] / D,
        patch_size=w.shape[-1],
        tubelet_size=w.shape[2],
        in_chans=w.shape[1],
        img_size=img_size,
        qkv_bias="blocks.0.attn.qkv.bias" in sd,
        norm_eps=1e-6,
    )


def predictor_args_from_state_dict(
    sd: Mapping[str, torch.Tensor],
    grid_size: int | tuple[int, int] = 16,
    num_heads: int = 16,
    use_extrinsics: bool = False,
) -> dict:
    """Recover ACPredictor args from weight shapes (heads and patch grid are not in the weights)."""
    W, D = sd["predictor_embed.weight"].shape  # [width, encoder dim]
    depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"predictor_blocks\.(\d+)\.", k)))
    return dict(
        embed_dim=D,
        predictor_embed_dim=W,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=sd["predictor_blocks.0.mlp.fc1.weight"].shape[0] / W,
        grid_size=grid_size,
        action_dim=sd["action_encoder.weight"].shape[1],
        use_extrinsics=use_extrinsics,
        extrinsics_encoder="extrinsics_encoder.weight" in sd,
        qkv_bias="predictor_blocks.0.attn.qkv.bias" in sd,
        norm_eps=1e-6,
    )


def load_official_encoder(
    ckpt: Mapping | str | os.PathLike, which: str = "encoder", img_size: int = 256, num_heads: int | None = None
) -> VisionTransformer:
    """Build our encoder from an official checkpoint (path or loaded dict), strictly."""
    if not isinstance(ckpt, Mapping):
        ckpt = read_official_checkpoint(ckpt)
    sd = official_encoder_state_dict(ckpt, which)
    model = _build_on_meta(VisionTransformer, **encoder_args_from_state_dict(sd, num_heads, img_size))
    return load_strict(model, sd)


def load_official_predictor(
    ckpt: Mapping | str | os.PathLike,
    grid_size: int | tuple[int, int] = 16,
    num_heads: int = 16,
    use_extrinsics: bool = False,
) -> ACPredictor:
    """Build our AC predictor from an official 2-AC checkpoint (path or loaded dict), strictly.
    The released model: 256 px, patch 16 -> grid 16, 16 heads."""
    if not isinstance(ckpt, Mapping):
        ckpt = read_official_checkpoint(ckpt)
    sd = official_predictor_state_dict(ckpt)
    model = _build_on_meta(ACPredictor, **predictor_args_from_state_dict(sd, grid_size, num_heads, use_extrinsics))
    return load_strict(model, sd)


# ----------------------------------------------------------------------------- Hugging Face


def hf_encoder_state_dict(hf: Mapping[str, torch.Tensor]) -> StateDict:
    """``VJEPA2Model`` (or ``VJEPA2For...``, prefix "vjepa2.") weights -> our encoder keys.
    Predictor / pooler / classifier weights are ignored; unknown encoder keys are passed through
    (renamed without "encoder.") so strict loading reports them."""
    out: StateDict = {}
    qkv: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, value in hf.items():
        key = key.removeprefix("vjepa2.")
        if not key.startswith("encoder."):
            continue
        key = key.removeprefix("encoder.")
        if m := re.fullmatch(r"layer\.(\d+)\.attention\.(query|key|value)\.(weight|bias)", key):
            qkv.setdefault((int(m.group(1)), m.group(3)), {})[m.group(2)] = value
            continue
        key = re.sub(r"^embeddings\.patch_embeddings\.proj\.", "patch_embed.proj.", key)
        key = re.sub(r"^layer\.(\d+)\.attention\.proj\.", r"blocks.\1.attn.proj.", key)
        key = re.sub(r"^layer\.(\d+)\.", r"blocks.\1.", key)  # norm1 / norm2 / mlp.fc1 / mlp.fc2 keep their names
        key = re.sub(r"^layernorm\.", "norm.", key)
        out[key] = value
    for (i, kind), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            raise ValueError(f"HF layer {i}: incomplete attention {kind}s, found only {sorted(parts)}")
        out[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
    return out


def encoder_args_from_hf_config(cfg: Mapping) -> dict:
    """``VJEPA2Config`` (config.json dict) -> VisionTransformer args."""
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"only exact GELU encoders are supported; config has hidden_act={cfg['hidden_act']!r}")
    patch = cfg.get("patch_size", 16)
    if isinstance(patch, (list, tuple)):
        if len(set(patch)) != 1:
            raise ValueError(f"non-square patch_size {patch} is not supported")
        patch = patch[0]
    return dict(
        embed_dim=cfg.get("hidden_size", 1024),
        depth=cfg.get("num_hidden_layers", 24),
        num_heads=cfg.get("num_attention_heads", 16),
        mlp_ratio=float(cfg.get("mlp_ratio", 4.0)),
        patch_size=patch,
        tubelet_size=cfg.get("tubelet_size", 2),
        in_chans=cfg.get("in_chans", 3),
        img_size=cfg.get("crop_size", 256),
        qkv_bias=cfg.get("qkv_bias", True),
        norm_eps=cfg.get("layer_norm_eps", 1e-6),
    )


def read_hf_folder(folder: str | os.PathLike) -> tuple[dict, StateDict]:
    """(config dict, weights) of a ``save_pretrained`` folder; sharded safetensors supported."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder} is not a Hugging Face model folder: no config.json")
    cfg = json.loads(cfg_path.read_text())
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise FileNotFoundError(f"{folder}: no model.safetensors (or sharded index) found")
    sd: StateDict = {}
    for f in files:
        sd.update(load_file(folder / f))
    return cfg, sd


def load_hf_encoder(folder: str | os.PathLike) -> VisionTransformer:
    """Build our encoder from a Hugging Face ``VJEPA2Model`` folder, strictly."""
    cfg, hf = read_hf_folder(folder)
    model = _build_on_meta(VisionTransformer, **encoder_args_from_hf_config(cfg))
    return load_strict(model, hf_encoder_state_dict(hf))


# ----------------------------------------------------------------------------- our safetensors

_KINDS = {"encoder": VisionTransformer, "predictor": ACPredictor, "lewm": LeWM, "readout": GripperReadout}


def tensors_sha256(tensors: Mapping[str, torch.Tensor], transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, sorted by name (after `transform`, one
    tensor at a time)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name] if transform is None else transform(tensors[name])
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def module_sha256(module: torch.nn.Module, float_dtype: torch.dtype | None = None) -> str:
    """The one weights hash (feature caches, encoder pairing, trained files): `tensors_sha256` of the state
    dict; `float_dtype` hashes the floating-point tensors as if the module had been cast to it."""
    cast = None if float_dtype is None else (lambda t: t.to(float_dtype) if t.is_floating_point() else t)
    return tensors_sha256(module.state_dict(), cast)


def save_module(module: VisionTransformer | ACPredictor | LeWM | GripperReadout, path: str | os.PathLike, extra: Mapping | None = None) -> None:
    """Weights + self-describing metadata (format, kind, constructor args, optional extra JSON, content hash)."""
    from safetensors.torch import save_file

    kind = next((k for k, cls in _KINDS.items() if isinstance(module, cls)), None)
    if kind is None:
        raise TypeError(f"save_module takes a VisionTransformer, ACPredictor, LeWM or GripperReadout, not {type(module).__name__}")
    tensors = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    meta = {"format": FORMAT, "kind": kind, "arch": json.dumps(module.arch), "extra": json.dumps(dict(extra or {})),
            "content_sha256": tensors_sha256(tensors)}
    save_file(tensors, str(path), metadata=meta)
    # safetensors creates the file owner-only (0600); weights meant for sharing get the usual umask mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata of a file written by ``save_module`` ("arch" / "extra" parsed), without its weights."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except FileNotFoundError:
        raise ValueError(f"checkpoint {path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for damaged headers
        raise ValueError(f"checkpoint {path}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    if raw.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (metadata format={raw.get('format')!r})")
    try:
        return {
            "format": raw["format"],
            "kind": raw["kind"],
            "arch": json.loads(raw["arch"]),
            "extra": json.loads(raw.get("extra", "{}")),
            "content_sha256": raw.get("content_sha256"),
        }
    except (KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"checkpoint {path}: damaged metadata ({type(e).__name__}: {e})") from None


def read_safetensors(path: str | os.PathLike, verify: bool = True) -> tuple[StateDict, dict]:
    """(weights, metadata with "arch" / "extra" parsed) of a file written by ``save_module``. The weights
    are checked against the content hash recorded when the file was written; `verify=False` skips that
    (and logs that it did)."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    try:
        sd = load_file(str(path))
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"checkpoint {path}: cannot read its weights ({type(e).__name__}: {e})") from None
    recorded = meta["content_sha256"]
    if not verify:
        log.warning("checkpoint %s loaded without checking its content hash (verify=False)", path)
    elif recorded is None:
        log.warning("checkpoint %s records no content hash: corruption cannot be detected (re-save it with save_module)", path)
    elif tensors_sha256(sd) != recorded:
        raise ValueError(f"checkpoint {path}: its weights do not match the content hash recorded when it was written "
                         "(the file is corrupt or was altered); restore it from its source or retrain")
    return sd, meta


def load_module(path: str | os.PathLike, kind: str | None = None, verify: bool = True) -> VisionTransformer | ACPredictor | LeWM | GripperReadout:
    """Build and strictly load the module a ``save_module`` file describes (on CPU), its weights verified."""
    sd, meta = read_safetensors(path, verify)
    if kind is not None and meta["kind"] != kind:
        raise ValueError(f"{path} holds a {meta['kind']}, not a {kind}")
    model = _build_on_meta(_KINDS[meta["kind"]], **meta["arch"])
    return load_strict(model, sd)
