"""State dicts with the key names and shapes of OpenGVLab VideoMAE V2 checkpoints.

Typed out from OpenGVLab/VideoMAEv2 (models/modeling_finetune.py, models/modeling_pretrain.py,
run_class_finetuning.py, docs/MODEL_ZOO.md), not produced by our own code:

* blocks as V1's: `blocks.{i}.norm1`, `attn.qkv.weight` (3D, D) without bias, `attn.q_bias`,
  `attn.v_bias`, `attn.proj`, `norm2`, `mlp.fc1` (int(D * mlp_ratio), D), `mlp.fc2`; no
  `gamma_1` / `gamma_2` (init_values 0, the released scripts' default);
* fine-tuned (`VisionTransformer`): `patch_embed.proj`, the blocks, `fc_norm` (the `norm` is
  an Identity under mean pooling, so no keys), `head`; no `pos_embed`: the sin-cos table is a
  plain attribute, not a parameter or buffer (`use_learnable_pos_emb=False`);
* pretraining (`PretrainVisionTransformer`): `encoder.patch_embed`, `encoder.blocks.{i}`,
  `encoder.norm` (the encoder head is an Identity: encoder_num_classes=0),
  `encoder_to_decoder.weight` (Dd, D) without bias, `mask_token` (1, 1, Dd),
  `decoder.blocks.{i}`, `decoder.norm`, `decoder.head` (tubelet * p * p * 3, Dd); no tables;
* wrapped under `model` or `module` (the fine-tuning loader's `--model_key model|module`), and
  its loader strips a `backbone.` or `encoder.` prefix;
* ViT-g (`vit_giant_patch14_224`): patch 14, D 1408, depth 40, 16 heads, mlp_ratio 48/11 (fc1
  6144 rows), LayerNorm eps 1e-6; its pretraining decoder: Dd 512, 8 heads, depth 4
  (run_mae_pretraining.py `--decoder_depth` default), fc1 int(512 * 48 / 11) = 2234 rows, head
  2 * 14 * 14 * 3 = 1176 outputs.
"""

from __future__ import annotations

import original_layout

GIANT = dict(dim=1408, depth=40, mlp=6144, patch=14, dec_dim=512, dec_depth=4, dec_mlp=2234)

# The classifier heads of the released fine-tuned checkpoints (MODEL_ZOO.md): classes per file.
SHIPPED_HEADS = {
    "vit_g_hybrid_pt_1200e_k710_ft": 710,
    "vit_g_hybrid_pt_1200e_k400_ft": 400,
    "vit_g_hybrid_pt_1200e_k710_it_k400_ft": 400,
    "vit_g_hybrid_pt_1200e_k710_it_k600_ft": 600,
    "vit_g_hybrid_pt_1200e_ssv2_ft": 174,
    "vit_g_hybrid_pt_1200e_k710_it_ucf101_ft": 101,
    "vit_g_hybrid_pt_1200e_k710_it_hmdb51_ft": 51,
    "vit_s_k710_dl_from_giant": 710,
    "vit_b_k710_dl_from_giant": 710,
}


def _block(prefix: str, dim: int, mlp: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.norm1.weight": (dim,), f"{prefix}.norm1.bias": (dim,),
        f"{prefix}.attn.qkv.weight": (3 * dim, dim),
        f"{prefix}.attn.q_bias": (dim,), f"{prefix}.attn.v_bias": (dim,),
        f"{prefix}.attn.proj.weight": (dim, dim), f"{prefix}.attn.proj.bias": (dim,),
        f"{prefix}.norm2.weight": (dim,), f"{prefix}.norm2.bias": (dim,),
        f"{prefix}.mlp.fc1.weight": (mlp, dim), f"{prefix}.mlp.fc1.bias": (mlp,),
        f"{prefix}.mlp.fc2.weight": (dim, mlp), f"{prefix}.mlp.fc2.bias": (dim,),
    }


def v2_finetuned_shapes(dim: int, depth: int, mlp: int, num_classes: int, patch: int = 14,
                        tubelet: int = 2) -> dict[str, tuple[int, ...]]:
    shapes = {"patch_embed.proj.weight": (dim, 3, tubelet, patch, patch), "patch_embed.proj.bias": (dim,)}
    for i in range(depth):
        shapes.update(_block(f"blocks.{i}", dim, mlp))
    shapes.update({"fc_norm.weight": (dim,), "fc_norm.bias": (dim,),
                   "head.weight": (num_classes, dim), "head.bias": (num_classes,)})
    return shapes


def v2_pretraining_shapes(dim: int, depth: int, mlp: int, dec_dim: int, dec_depth: int, dec_mlp: int,
                          patch: int = 14, tubelet: int = 2) -> dict[str, tuple[int, ...]]:
    shapes = {"encoder.patch_embed.proj.weight": (dim, 3, tubelet, patch, patch),
              "encoder.patch_embed.proj.bias": (dim,)}
    for i in range(depth):
        shapes.update(_block(f"encoder.blocks.{i}", dim, mlp))
    shapes.update({"encoder.norm.weight": (dim,), "encoder.norm.bias": (dim,),
                   "encoder_to_decoder.weight": (dec_dim, dim), "mask_token": (1, 1, dec_dim)})
    for i in range(dec_depth):
        shapes.update(_block(f"decoder.blocks.{i}", dec_dim, dec_mlp))
    out = tubelet * patch * patch * 3
    shapes.update({"decoder.norm.weight": (dec_dim,), "decoder.norm.bias": (dec_dim,),
                   "decoder.head.weight": (out, dec_dim), "decoder.head.bias": (out,)})
    return shapes


random_state = original_layout.random_state  # distinct random values for every key
