"""Weight files and key names: ours, transformers' (4.x and 5.x) and the original research code's.

Inside, every model uses one naming ("internal"): timm-style blocks with a fused qkv, the
encoder under `videomae.`. This module is the one place that maps other layouts to it and
back, and that reads weight files safely (safetensors first, pickles with weights_only).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors

from .positions import sinusoid_table

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
BIN_WEIGHTS = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"
WEIGHT_NAMES = (SAFE_WEIGHTS, SAFE_INDEX, BIN_WEIGHTS, BIN_INDEX)

# (internal suffix inside a block, transformers suffix inside a layer)
_BLOCK_NAMES = [
    ("norm1.", "layernorm_before."),
    ("attn.proj.", "attention.output.dense."),
    ("norm2.", "layernorm_after."),
    ("mlp.fc1.", "intermediate.dense."),
    ("mlp.fc2.", "output.dense."),
    ("attn.q_bias", "attention.attention.q_bias"),
    ("attn.v_bias", "attention.attention.v_bias"),
]
# Attention layers unfused for adapters (`PreTrainedVideoMAE.unfuse_qkv`): q and v biases in the Linears.
_UNFUSED_NAMES = [
    ("attn.query.bias", "attention.attention.q_bias"),
    ("attn.value.bias", "attention.attention.v_bias"),
    ("attn.query.", "attention.attention.query."),
    ("attn.key.", "attention.attention.key."),
    ("attn.value.", "attention.attention.value."),
]
_HF_BIAS_5X = {"attention.attention.query.bias": "attn.q_bias", "attention.attention.value.bias": "attn.v_bias"}
_QKV = ("query", "key", "value")


# --------------------------------------------------------------------------- reading files
def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of one weight file. Pickles are read with weights_only=True: a file that
    tries to run code is refused, not executed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        try:
            return load_safetensors(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    if hasattr(torch.serialization, "add_safe_globals"):
        # Original checkpoints store their argparse options beside the weights.
        torch.serialization.add_safe_globals([argparse.Namespace])
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not _is_torch_file(path):
            raise ValueError(f"{path}: not a readable PyTorch checkpoint (neither a torch.save archive nor a "
                             "pickle)") from None
        raise ValueError(f"{path}: refused to load: the file holds objects other than tensors and "
                         f"weights_only loading does not run code ({str(err).splitlines()[0]})") from None
    except Exception as err:  # noqa: BLE001 - damaged bytes can make the unpickler raise anything
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from None
    return unwrap_state_dict(obj, str(path))


def _is_torch_file(path: Path) -> bool:
    """A torch.save zip archive, or a pickle (the legacy format): what the unpickler can refuse."""
    with path.open("rb") as f:
        if zipfile.is_zipfile(f):
            return True
        f.seek(0)
        return f.read(1) == b"\x80"  # the pickle protocol opcode


def unwrap_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint that may wrap them in 'model', 'module' or 'state_dict'."""
    if isinstance(obj, dict):
        for key in ("model", "module", "state_dict", "model_state"):
            if isinstance(obj.get(key), dict):
                return unwrap_state_dict(obj[key], source)
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise ValueError(f"{source}: no tensors found (expected a state dict, possibly under 'model' or 'module')")


def find_weights(folder: Path) -> Path:
    for name in WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no weights found; expected one of {', '.join(WEIGHT_NAMES)}")


def read_weights(path: Path, fetch: Callable[[str], Path | None] | None = None) -> dict[str, torch.Tensor]:
    """A single file, or every shard named by an index file. `fetch` finds a shard by name
    (a hub download); by default shards sit beside the index."""
    if path.name.endswith(".index.json"):
        try:
            index = json.loads(path.read_text())
            shards = sorted(set(index["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError) as err:
            raise ValueError(f"{path}: not a valid shard index ({err})") from None
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            if not isinstance(shard, str) or shard != Path(shard).name or shard in ("", ".", ".."):
                raise ValueError(f"{path}: shard {shard!r} is not a file name in the index's folder; refusing to "
                                 "read files elsewhere")
            located = fetch(shard) if fetch is not None else path.parent / shard
            state.update(load_weights_file(located if located is not None else path.parent / shard))
        return state
    return load_weights_file(path)


# --------------------------------------------------------------------------- key layouts
def detect_layout(state: dict[str, torch.Tensor]) -> str:
    keys = list(state)
    if any(k.startswith("videomae.blocks.") or k.startswith("videomae.patch_embed.") for k in keys):
        return "internal"
    if any("patch_embeddings.projection" in k or ".encoder.layer." in k or k.startswith("encoder.layer.")
           for k in keys):
        return "transformers"
    if any(re.match(r"^(encoder\.|backbone\.)?(blocks\.\d+|patch_embed)\.", k) for k in keys):
        return "original"
    raise ValueError("unrecognised checkpoint layout: no VideoMAE patch embedding or blocks among keys "
                     f"{keys[:5]}{'...' if len(keys) > 5 else ''}")


def _strip_wrappers(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


def to_internal(state: dict[str, torch.Tensor], strict: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """Any supported layout -> internal names. Returns the state dict and the layout found.
    `strict=False`: keys of no known layout are returned unchanged (layout "unknown"), so that
    a loader reports them as unexpected and the model's weights as missing."""
    state = {_strip_wrappers(k): v for k, v in state.items()}
    try:
        layout = detect_layout(state)
    except ValueError:
        if strict:
            raise
        return dict(state), "unknown"
    if layout == "internal":
        return dict(state), layout
    if layout == "original":
        return _from_original(state), layout
    return _from_transformers(state), layout


def _is_fixed_table(table: torch.Tensor) -> bool:
    """Whether a stored position table is the fixed sin-cos one (then the model makes its own)."""
    if table.dim() != 3 or table.shape[0] != 1:
        return False
    return torch.allclose(table.float(), sinusoid_table(table.shape[1], table.shape[2]), atol=1e-4)


def _from_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("backbone."):  # VideoMAE V2's fine-tuning loader strips this prefix too
            key = key[len("backbone."):]
        if key.startswith("encoder.head.") or key == "decoder.pos_embed":
            continue  # the pretraining encoder's empty head; the decoder's table is always the fixed one
        if key in ("pos_embed", "encoder.pos_embed"):
            if not _is_fixed_table(value):  # a learned table (use_learnable_pos_emb)
                out["videomae.pos_embed"] = value
            continue
        new = key
        if key.startswith("encoder."):
            new = "videomae." + key[len("encoder."):]
        elif re.match(r"^(patch_embed|blocks\.\d+|norm)\.", key):
            new = "videomae." + key
        elif key.startswith("head."):
            new = "classifier." + key[len("head."):]
        out[new] = value
    return out


def _from_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.endswith("position_embeddings"):
            continue
        m = re.match(r"^(?:videomae\.)?(?:encoder\.layer|(decoder)\.decoder_layers)\.(\d+)\.(.+)$", key)
        if m:
            prefix = f"decoder.blocks.{m.group(2)}." if m.group(1) else f"videomae.blocks.{m.group(2)}."
            rest = m.group(3)
            qm = re.match(r"^attention\.attention\.(query|key|value)\.weight$", rest)
            if qm:
                qkv.setdefault(prefix, {})[qm.group(1)] = value
                continue
            out[prefix + _block_from_hf(rest)] = value
            continue
        m = re.match(r"^(?:videomae\.)?embeddings\.patch_embeddings\.projection\.(.+)$", key)
        if m:
            out["videomae.patch_embed.proj." + m.group(1)] = value
            continue
        m = re.match(r"^(?:videomae\.)?layernorm\.(.+)$", key)
        if m:
            out["videomae.norm." + m.group(1)] = value
            continue
        out[key] = value
    for prefix, parts in qkv.items():
        if set(parts) != set(_QKV):
            raise ValueError(f"checkpoint has only {sorted(parts)} of query/key/value weights for layer "
                             f"{prefix.rstrip('.')}")
        out[prefix + "attn.qkv.weight"] = torch.cat([parts[n] for n in _QKV], dim=0)
    return out


def _block_from_hf(rest: str) -> str:
    if rest in _HF_BIAS_5X:
        return _HF_BIAS_5X[rest]
    for ours, theirs in _BLOCK_NAMES:
        if rest.startswith(theirs):
            return ours + rest[len(theirs):]
    return "hf." + rest  # unknown: kept, so it is reported as unexpected


def _block_to_hf(rest: str) -> str:
    for ours, theirs in _UNFUSED_NAMES + _BLOCK_NAMES:
        if rest.startswith(ours):
            return theirs + rest[len(ours):]
    raise KeyError(rest)


def to_transformers(state: dict[str, torch.Tensor], with_prefix: bool = True,
                    version: int = 4) -> dict[str, torch.Tensor]:
    """Internal names -> the transformers 4.x layout (`q_bias` / `v_bias`), which 4.x and 5.x
    both read from files; `version=5`: 5.x's module names (`query.bias` / `value.bias`), what its
    `state_dict()` has. `with_prefix=False` writes a bare `VideoMAEModel`'s names."""
    out = _to_transformers_4x(state, with_prefix)
    if version == 5:
        out = {_bias_5x(k): v for k, v in out.items()}
    return out


def _bias_5x(key: str) -> str:
    for old, new in (("attention.attention.q_bias", "attention.attention.query.bias"),
                     ("attention.attention.v_bias", "attention.attention.value.bias")):
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def _to_transformers_4x(state: dict[str, torch.Tensor], with_prefix: bool) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    enc = "videomae." if with_prefix else ""
    for key, value in state.items():
        m = re.match(r"^(videomae|decoder)\.blocks\.(\d+)\.(.+)$", key)
        if m:
            layer = f"{enc}encoder.layer.{m.group(2)}." if m.group(1) == "videomae" else \
                f"decoder.decoder_layers.{m.group(2)}."
            if m.group(3) == "attn.qkv.weight":
                for name, part in zip(_QKV, value.chunk(3, dim=0)):
                    out[f"{layer}attention.attention.{name}.weight"] = part
            else:
                out[layer + _block_to_hf(m.group(3))] = value
        elif key.startswith("videomae.patch_embed.proj."):
            out[f"{enc}embeddings.patch_embeddings.projection." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("videomae.norm."):
            out[f"{enc}layernorm." + key.rsplit(".", 1)[1]] = value
        else:
            out[key] = value
    return out


def unfuse_qkv(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Internal names -> those of attention layers unfused for adapters (`attn.query.weight`,
    `attn.query.bias`, ...)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("attn.qkv.weight"):
            stem = key[: -len("qkv.weight")]
            for name, part in zip(_QKV, value.chunk(3, dim=0)):
                out[f"{stem}{name}.weight"] = part
        elif key.endswith(("attn.q_bias", "attn.v_bias")):
            out[key[: -len("q_bias")] + ("query.bias" if key.endswith("q_bias") else "value.bias")] = value
        else:
            out[key] = value
    return out


def to_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Internal names -> the original research layout (used to test conversion)."""
    pretraining = any(k.startswith("decoder.") for k in state)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("videomae."):
            rest = key[len("videomae."):]
            out[("encoder." if pretraining else "") + rest] = value
        elif key.startswith("classifier."):
            out["head." + key[len("classifier."):]] = value
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- config inference
_ENCODER_HEADS = {384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 16}
_DECODER_HEADS = {192: 3, 384: 6, 512: 8, 640: 8}


def infer_config_fields(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Config fields that an internal-layout state dict determines (original checkpoints have
    no config.json). Heads are not in the weights: the published sizes' counts are used."""
    try:
        proj = state["videomae.patch_embed.proj.weight"]  # (D, C, t, p, p)
    except KeyError:
        raise ValueError("checkpoint has no patch embedding weight; cannot infer its config") from None
    hidden, channels, tubelet, patch, _ = proj.shape
    layers = len({k.split(".")[2] for k in state if k.startswith("videomae.blocks.")})
    fields: dict[str, Any] = dict(
        hidden_size=hidden, num_channels=channels, tubelet_size=tubelet, patch_size=patch,
        num_hidden_layers=layers, num_attention_heads=_ENCODER_HEADS.get(hidden, max(1, hidden // 64)),
        intermediate_size=state["videomae.blocks.0.mlp.fc1.weight"].shape[0],
        qkv_bias="videomae.blocks.0.attn.q_bias" in state,
        use_mean_pooling="videomae.norm.weight" not in state,
        layer_norm_eps=1e-6,  # the original code's LayerNorm epsilon
    )
    if "videomae.pos_embed" in state:  # a learned table: its rows give the grid (16 frames, square frames)
        fields["use_learnable_pos_emb"] = True
        rows, t = state["videomae.pos_embed"].shape[1], 16 // tubelet
        side = math.isqrt(rows // t)
        if side * side * t == rows:
            fields["image_size"] = side * patch
    if "classifier.weight" in state:
        fields["num_labels"] = state["classifier.weight"].shape[0]
    if "encoder_to_decoder.weight" in state:
        dec = state["encoder_to_decoder.weight"].shape[0]
        fields.update(
            decoder_hidden_size=dec,
            decoder_num_hidden_layers=len({k.split(".")[2] for k in state if k.startswith("decoder.blocks.")}),
            decoder_num_attention_heads=_DECODER_HEADS.get(dec, max(1, dec // 64)),
            decoder_intermediate_size=state["decoder.blocks.0.mlp.fc1.weight"].shape[0],
        )
    return fields
