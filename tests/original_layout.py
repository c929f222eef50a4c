"""State dicts with the key names and shapes of the original MCG-NJU VideoMAE checkpoints.

Typed out from the original code (MCG-NJU/VideoMAE, modeling_finetune.py and
modeling_pretrain.py), not produced by our own `to_original`, so that a naming mistake made
both ways in `checkpoint.py` cannot pass:

* timm-style blocks: `blocks.{i}.norm1`, `attn.qkv.weight` (3D, D) with no bias, `attn.q_bias`
  and `attn.v_bias` (D), `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`;
* fine-tuned: `patch_embed.proj` (D, C, tubelet, p, p), the blocks, `fc_norm` (mean pooling)
  or `norm`, `head`;
* pretraining: the encoder under `encoder.` (with `encoder.norm`), `encoder_to_decoder.weight`
  (Dd, D) without bias, `mask_token` (1, 1, Dd), `decoder.blocks.{i}`, `decoder.norm`,
  `decoder.head` (tubelet * p * p * 3, Dd); some variants also save `pos_embed` tables;
* the whole wrapped in a dict under `model` (or `module`), beside other training state.
"""

from __future__ import annotations

import torch


def _block(prefix: str, dim: int, mlp: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.norm1.weight": (dim,), f"{prefix}.norm1.bias": (dim,),
        f"{prefix}.attn.q_bias": (dim,), f"{prefix}.attn.v_bias": (dim,),
        f"{prefix}.attn.qkv.weight": (3 * dim, dim),
        f"{prefix}.attn.proj.weight": (dim, dim), f"{prefix}.attn.proj.bias": (dim,),
        f"{prefix}.norm2.weight": (dim,), f"{prefix}.norm2.bias": (dim,),
        f"{prefix}.mlp.fc1.weight": (mlp, dim), f"{prefix}.mlp.fc1.bias": (mlp,),
        f"{prefix}.mlp.fc2.weight": (dim, mlp), f"{prefix}.mlp.fc2.bias": (dim,),
    }


def finetuned_shapes(dim: int, depth: int, mlp: int, num_labels: int, patch: int = 16, tubelet: int = 2,
                     mean_pooling: bool = True) -> dict[str, tuple[int, ...]]:
    """A fine-tuned classifier's keys (`VisionTransformer` in modeling_finetune.py)."""
    shapes = {"patch_embed.proj.weight": (dim, 3, tubelet, patch, patch), "patch_embed.proj.bias": (dim,)}
    for i in range(depth):
        shapes.update(_block(f"blocks.{i}", dim, mlp))
    norm = "fc_norm" if mean_pooling else "norm"
    shapes.update({f"{norm}.weight": (dim,), f"{norm}.bias": (dim,),
                   "head.weight": (num_labels, dim), "head.bias": (num_labels,)})
    return shapes


def pretraining_shapes(dim: int, depth: int, mlp: int, dec_dim: int, dec_depth: int, dec_mlp: int,
                       num_patches: int, patch: int = 16, tubelet: int = 2) -> dict[str, tuple[int, ...]]:
    """A pretraining checkpoint's keys (`PretrainVisionTransformer` in modeling_pretrain.py)."""
    shapes = {"encoder.patch_embed.proj.weight": (dim, 3, tubelet, patch, patch),
              "encoder.patch_embed.proj.bias": (dim,), "encoder.pos_embed": (1, num_patches, dim)}
    for i in range(depth):
        shapes.update(_block(f"encoder.blocks.{i}", dim, mlp))
    shapes.update({"encoder.norm.weight": (dim,), "encoder.norm.bias": (dim,),
                   "encoder_to_decoder.weight": (dec_dim, dim), "mask_token": (1, 1, dec_dim),
                   "decoder.pos_embed": (1, num_patches, dec_dim)})
    for i in range(dec_depth):
        shapes.update(_block(f"decoder.blocks.{i}", dec_dim, dec_mlp))
    out = tubelet * patch * patch * 3
    shapes.update({"decoder.norm.weight": (dec_dim,), "decoder.norm.bias": (dec_dim,),
                   "decoder.head.weight": (out, dec_dim), "decoder.head.bias": (out,)})
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Distinct random values for every key, so a weight loaded into the wrong place shows."""
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=g) * 0.1 for name, shape in shapes.items()}
