"""Checkpoints: layouts (transformers 4.x / 5.x, original .pth), shards, .bin, heads, unsafe files."""

from __future__ import annotations

import argparse
import logging

import pytest
import torch
from safetensors.torch import load_file, save_file

import videomae
from original_layout import finetuned_shapes, pretraining_shapes, random_state
from reference import compare_outputs, randomize, tiny, transformers_config
from videomae import checkpoint


def _pixels(cfg: dict, batch: int = 2):
    g = torch.Generator().manual_seed(3)
    config = videomae.VideoMAEConfig(**cfg)
    pixels = torch.randn(batch, config.num_frames, 3, *config.image_hw, generator=g)
    return pixels, videomae.tube_mask(config.grid_size, 0.75, batch, generator=g)


def _reference(name: str, cfg: dict, folder, **save):
    transformers = pytest.importorskip("transformers")
    model = randomize(getattr(transformers, name)(transformers_config(**cfg)).eval())
    model.save_pretrained(folder, **save)
    return model


def test_transformers_5x_key_names_load(tmp_path):
    """5.x stores q/v biases as query.bias / value.bias; rewrite a file that way and load it."""
    cfg = tiny()
    theirs = _reference("VideoMAEForVideoClassification", cfg, tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    renamed = {k.replace("attention.attention.q_bias", "attention.attention.query.bias")
               .replace("attention.attention.v_bias", "attention.attention.value.bias"): v for k, v in state.items()}
    assert any(k.endswith("query.bias") for k in renamed)
    save_file(renamed, str(tmp_path / "model.safetensors"))
    ours = videomae.VideoMAEForVideoClassification.from_pretrained(tmp_path)
    pixels, _ = _pixels(cfg)
    compare_outputs(ours(pixels), theirs(pixel_values=pixels))


def test_we_write_4x_names_that_both_versions_read(tmp_path):
    videomae.VideoMAEForPreTraining(videomae.VideoMAEConfig(**tiny())).save_pretrained(tmp_path)
    keys = set(load_file(tmp_path / "model.safetensors"))
    assert "videomae.encoder.layer.0.attention.attention.q_bias" in keys
    assert "videomae.encoder.layer.0.attention.attention.key.weight" in keys
    assert "decoder.decoder_layers.1.attention.attention.v_bias" in keys
    assert "mask_token" in keys and "encoder_to_decoder.weight" in keys


@pytest.mark.parametrize("safe", [True, False])
def test_sharded_checkpoints_both_ways(tmp_path, safe, transformers):
    cfg = tiny()
    theirs = _reference("VideoMAEForPreTraining", cfg, tmp_path / "t", max_shard_size="20KB",
                        safe_serialization=safe) if safe else None
    pixels, mask = _pixels(cfg)
    if theirs is not None:
        assert len(list((tmp_path / "t").glob("model-*.safetensors"))) > 1
        ours = videomae.VideoMAEForPreTraining.from_pretrained(tmp_path / "t")
        compare_outputs(ours(pixels, mask), theirs(pixel_values=pixels, bool_masked_pos=mask))
    ours = randomize(videomae.VideoMAEForPreTraining(videomae.VideoMAEConfig(**cfg)).eval())
    ours.save_pretrained(tmp_path / "o", safe_serialization=safe, max_shard_size="20KB")
    index = "model.safetensors.index.json" if safe else "pytorch_model.bin.index.json"
    assert (tmp_path / "o" / index).is_file()
    back = transformers.VideoMAEForPreTraining.from_pretrained(tmp_path / "o").eval()
    compare_outputs(ours(pixels, mask), back(pixel_values=pixels, bool_masked_pos=mask))
    again = videomae.VideoMAEForPreTraining.from_pretrained(tmp_path / "o")
    compare_outputs(again(pixels, mask), ours(pixels, mask), tol=0.0)


def test_bin_checkpoint_from_transformers(tmp_path):
    cfg = tiny()
    theirs = _reference("VideoMAEModel", cfg, tmp_path)
    # transformers 5 writes safetensors only; a 4.x-era .bin holds the same tensors pickled
    torch.save(load_file(tmp_path / "model.safetensors"), tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors").unlink()
    ours = videomae.VideoMAEModel.from_pretrained(tmp_path)
    pixels, _ = _pixels(cfg)
    compare_outputs(ours(pixels), theirs(pixel_values=pixels))


def _original_file(model_name: str, cfg: dict, path, wrap: str = "model"):
    """An original-layout .pth made from a transformers model by the inverse key mapping."""
    transformers = pytest.importorskip("transformers")
    theirs = randomize(getattr(transformers, model_name)(transformers_config(**cfg)).eval())
    internal, layout = checkpoint.to_internal(theirs.state_dict())
    assert layout == "transformers"
    original = checkpoint.to_original(internal)
    if wrap == "module":
        original = {"module." + k: v for k, v in original.items()}
    torch.save({wrap: original, "epoch": 799, "args": argparse.Namespace(model="pretrain_videomae")}, path)
    return theirs, original


@pytest.mark.parametrize("wrap", ["model", "module"])
def test_original_pretraining_checkpoint(tmp_path, wrap):
    cfg = tiny(use_mean_pooling=False, layer_norm_eps=1e-6)
    theirs, original = _original_file("VideoMAEForPreTraining", cfg, tmp_path / "checkpoint.pth", wrap)
    assert any(k.endswith("encoder.blocks.0.attn.qkv.weight") for k in original)
    ours = videomae.VideoMAEForPreTraining.from_pretrained(
        tmp_path / "checkpoint.pth", num_frames=4, image_size=32, num_attention_heads=4,
        decoder_num_attention_heads=2)
    assert ours.config.use_mean_pooling is False and ours.config.decoder_hidden_size == 16
    pixels, mask = _pixels(cfg)
    compare_outputs(ours(pixels, mask), theirs(pixel_values=pixels, bool_masked_pos=mask))


def test_original_finetuned_checkpoint(tmp_path):
    cfg = tiny(num_labels=5, layer_norm_eps=1e-6)
    theirs, original = _original_file("VideoMAEForVideoClassification", cfg, tmp_path / "ft.pth")
    assert "head.weight" in original and "fc_norm.weight" in original
    ours = videomae.VideoMAEForVideoClassification.from_pretrained(
        tmp_path / "ft.pth", num_frames=4, image_size=32, num_attention_heads=4)
    assert ours.config.num_labels == 5 and ours.config.use_mean_pooling
    pixels, _ = _pixels(cfg)
    compare_outputs(ours(pixels), theirs(pixel_values=pixels))


def _block_pairs(ours: str, theirs: str, dim: int) -> list[tuple[str, str, slice | None]]:
    """(transformers 4.x name, original name, rows of it) for one block: facts of both layouts."""
    pairs = [("layernorm_before.weight", "norm1.weight"), ("layernorm_after.bias", "norm2.bias"),
             ("attention.attention.q_bias", "attn.q_bias"), ("attention.attention.v_bias", "attn.v_bias"),
             ("attention.output.dense.weight", "attn.proj.weight"), ("intermediate.dense.weight", "mlp.fc1.weight"),
             ("output.dense.bias", "mlp.fc2.bias")]
    out = [(f"{ours}.{a}", f"{theirs}.{b}", None) for a, b in pairs]
    for j, name in enumerate(("query", "key", "value")):  # the fused qkv splits in this order
        out.append((f"{ours}.attention.attention.{name}.weight", f"{theirs}.attn.qkv.weight",
                    slice(j * dim, (j + 1) * dim)))
    return out


def _assert_placed(folder, original: dict, pairs) -> None:
    saved = load_file(folder / "model.safetensors")
    for ours, theirs, rows in pairs:
        expected = original[theirs] if rows is None else original[theirs][rows]
        assert torch.equal(saved[ours], expected), (ours, theirs)


def test_original_finetuned_layout_puts_every_tensor_where_the_original_code_uses_it(tmp_path):
    original = random_state(finetuned_shapes(dim=32, depth=2, mlp=64, num_labels=5, patch=8))
    torch.save({"model": original, "epoch": 29, "args": argparse.Namespace(model="vit_base")}, tmp_path / "ft.pth")
    model, info = videomae.VideoMAEForVideoClassification.from_pretrained(
        tmp_path / "ft.pth", num_frames=4, image_size=32, num_attention_heads=4, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.num_labels) == (32, 2, 64, 5)
    assert c.use_mean_pooling and c.qkv_bias and c.layer_norm_eps == 1e-6 and (c.patch_size, c.tubelet_size) == (8, 2)
    model.save_pretrained(tmp_path / "hf")
    pairs = [("videomae.embeddings.patch_embeddings.projection.weight", "patch_embed.proj.weight", None),
             ("videomae.embeddings.patch_embeddings.projection.bias", "patch_embed.proj.bias", None),
             ("fc_norm.weight", "fc_norm.weight", None), ("fc_norm.bias", "fc_norm.bias", None),
             ("classifier.weight", "head.weight", None), ("classifier.bias", "head.bias", None)]
    for i in range(2):
        pairs += _block_pairs(f"videomae.encoder.layer.{i}", f"blocks.{i}", 32)
    _assert_placed(tmp_path / "hf", original, pairs)


def test_original_pretraining_layout_puts_every_tensor_where_the_original_code_uses_it(tmp_path):
    original = random_state(pretraining_shapes(dim=32, depth=2, mlp=64, dec_dim=16, dec_depth=2, dec_mlp=32,
                                               num_patches=2 * 4 * 4, patch=8))
    torch.save({"module": original, "optimizer": {}, "epoch": 799}, tmp_path / "checkpoint-799.pth")
    model, info = videomae.VideoMAEForPreTraining.from_pretrained(
        tmp_path / "checkpoint-799.pth", num_frames=4, image_size=32, num_attention_heads=4,
        decoder_num_attention_heads=2, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()  # the pos_embed tables are fixed: dropped
    c = model.config
    assert (c.decoder_hidden_size, c.decoder_num_hidden_layers, c.decoder_intermediate_size) == (16, 2, 32)
    assert c.use_mean_pooling is False  # the pretraining encoder ends with `encoder.norm`
    model.save_pretrained(tmp_path / "hf")
    pairs = [("videomae.embeddings.patch_embeddings.projection.weight", "encoder.patch_embed.proj.weight", None),
             ("videomae.layernorm.weight", "encoder.norm.weight", None),
             ("encoder_to_decoder.weight", "encoder_to_decoder.weight", None), ("mask_token", "mask_token", None),
             ("decoder.norm.bias", "decoder.norm.bias", None), ("decoder.head.weight", "decoder.head.weight", None)]
    for i in range(2):
        pairs += _block_pairs(f"videomae.encoder.layer.{i}", f"encoder.blocks.{i}", 32)
        pairs += _block_pairs(f"decoder.decoder_layers.{i}", f"decoder.blocks.{i}", 16)
    _assert_placed(tmp_path / "hf", original, pairs)


def test_original_config_inference_for_published_widths():
    state = {"videomae.patch_embed.proj.weight": torch.zeros(384, 3, 2, 16, 16),
             "videomae.blocks.0.mlp.fc1.weight": torch.zeros(1536, 384),
             "videomae.blocks.0.attn.q_bias": torch.zeros(384),
             "classifier.weight": torch.zeros(174, 384)}
    fields = checkpoint.infer_config_fields(state)
    assert fields["num_attention_heads"] == 6 and fields["num_labels"] == 174
    assert fields["tubelet_size"] == 2 and fields["patch_size"] == 16 and fields["use_mean_pooling"]


def test_classifier_from_pretraining_checkpoint_reinitialises_head(tmp_path, caplog):
    cfg = tiny()
    _reference("VideoMAEForPreTraining", cfg, tmp_path)
    with caplog.at_level(logging.WARNING):
        model, info = videomae.VideoMAEForVideoClassification.from_pretrained(
            tmp_path, num_labels=7, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight", "fc_norm.bias", "fc_norm.weight"]
    assert "mask_token" in info["unexpected_keys"]
    assert "classifier.weight" in caplog.text and "newly initialised" in caplog.text
    assert model.classifier.weight.shape == (7, 32)
    assert torch.all(model.fc_norm.weight == 1) and model.classifier.weight.std() < 0.1


def test_new_num_labels_needs_ignore_mismatched_sizes(tmp_path):
    _reference("VideoMAEForVideoClassification", tiny(num_labels=3), tmp_path)
    with pytest.raises(ValueError, match=r"classifier.weight: checkpoint \(3, 32\), model \(5, 32\).*ignore_mis"):
        videomae.VideoMAEForVideoClassification.from_pretrained(tmp_path, num_labels=5)
    model, info = videomae.VideoMAEForVideoClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert model.config.num_labels == 5
    assert sorted(m[0] for m in info["mismatched_keys"]) == ["classifier.bias", "classifier.weight"]


def test_backbone_loads_from_head_checkpoint_and_back(tmp_path, transformers):
    cfg = tiny()
    theirs = _reference("VideoMAEForVideoClassification", cfg, tmp_path / "cls")
    backbone = videomae.VideoMAEModel.from_pretrained(tmp_path / "cls")
    pixels, _ = _pixels(cfg)
    compare_outputs(backbone(pixels), theirs.videomae(pixel_values=pixels))
    backbone.save_pretrained(tmp_path / "bb")
    assert "encoder.layer.0.attention.attention.q_bias" in load_file(tmp_path / "bb" / "model.safetensors")
    ref = transformers.VideoMAEModel.from_pretrained(tmp_path / "bb")
    compare_outputs(backbone(pixels), ref(pixel_values=pixels))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": Evil()}, path)
    with pytest.raises(ValueError, match="evil.pth: refused to load"):
        videomae.VideoMAEModel.from_pretrained(path)
    assert not marker.exists()


def test_truncated_safetensors_is_a_clear_error(tmp_path):
    videomae.VideoMAEModel(videomae.VideoMAEConfig(**tiny())).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="model.safetensors: not a readable safetensors file"):
        videomae.VideoMAEModel.from_pretrained(tmp_path)


def test_missing_paths_and_offline_hub_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint file"):
        videomae.VideoMAEModel.from_pretrained(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        videomae.VideoMAEModel.from_pretrained("./does/not/exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no weights found"):
        videomae.VideoMAEModel.from_pretrained(tmp_path / "empty")
    with pytest.raises(OSError, match="offline, or not in the local cache"):
        videomae.VideoMAEModel.from_pretrained("MCG-NJU/videomae-base", local_files_only=True,
                                               cache_dir=tmp_path / "cache")


def test_checkpoint_without_videomae_keys_reports_every_weight_missing(tmp_path):
    # As transformers does: with a config.json, nothing of the checkpoint is used and every
    # weight of the model is reported missing (and initialised), by its transformers name.
    save_file({"foo.weight": torch.zeros(2)}, str(tmp_path / "model.safetensors"))
    videomae.VideoMAEConfig(**tiny()).save_pretrained(tmp_path)
    model, info = videomae.VideoMAEModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["unexpected_keys"] == {"foo.weight"}
    assert info["missing_keys"] == set(model.state_dict())
    # Without a config.json there is nothing to build the model from: a clear error.
    (tmp_path / "config.json").unlink()
    with pytest.raises(ValueError, match="no config.json beside it and no VideoMAE weights"):
        videomae.VideoMAEModel.from_pretrained(tmp_path / "model.safetensors")


def test_dtype_and_device_helpers(tmp_path):
    videomae.VideoMAEModel(videomae.VideoMAEConfig(**tiny())).save_pretrained(tmp_path)
    model = videomae.VideoMAEModel.from_pretrained(tmp_path, torch_dtype="bfloat16")
    assert model.dtype == torch.bfloat16 and model.device.type == "cpu" and not model.training


# --------------------------------------------------------------------------- VideoMAE V2 (OpenGVLab)
def test_giant_preset_has_the_shapes_of_videomae_v2_vit_g():
    from v2_layout import GIANT, SHIPPED_HEADS, v2_finetuned_shapes, v2_pretraining_shapes

    g = GIANT
    config = videomae.VideoMAEConfig.from_preset("giant", num_labels=SHIPPED_HEADS["vit_g_hybrid_pt_1200e_k710_ft"])
    assert (config.num_attention_heads, config.decoder_num_attention_heads, config.grid_size) == (16, 8, (8, 16, 16))
    with torch.device("meta"):  # ~1B parameters: shapes only
        classifier = videomae.VideoMAEForVideoClassification(config, skip_init=True)
        # the V2 (and V1) pretraining encoder ends with a norm: use_mean_pooling=False, as loading infers
        pretraining = videomae.VideoMAEForPreTraining(config.copy(use_mean_pooling=False), skip_init=True)
    for model, expected in ((classifier, v2_finetuned_shapes(g["dim"], g["depth"], g["mlp"], 710)),
                            (pretraining, v2_pretraining_shapes(**g))):
        ours = checkpoint.to_original(model.internal_state_dict())
        assert {k: tuple(v.shape) for k, v in ours.items()} == expected


@pytest.mark.parametrize("wrap", ["model", "module"])
def test_videomae_v2_finetuned_checkpoint_puts_every_tensor_in_place(tmp_path, wrap):
    from v2_layout import v2_finetuned_shapes, random_state as v2_random_state

    original = v2_random_state(v2_finetuned_shapes(dim=44, depth=2, mlp=192, num_classes=710))
    torch.save({wrap: original, "epoch": 39, "args": argparse.Namespace(model="vit_giant_patch14_224")},
               tmp_path / "vit_g_k710_ft.pth")
    model, info = videomae.VideoMAEForVideoClassification.from_pretrained(
        tmp_path / "vit_g_k710_ft.pth", num_frames=4, image_size=28, num_attention_heads=4, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    c = model.config
    assert (c.patch_size, c.hidden_size, c.intermediate_size, c.num_labels) == (14, 44, 192, 710)
    assert c.layer_norm_eps == 1e-6
    assert c.use_mean_pooling and not c.use_learnable_pos_emb and c.position_grid is None
    state = model.internal_state_dict()
    for ours, theirs in (("videomae.patch_embed.proj.weight", "patch_embed.proj.weight"),
                         ("videomae.blocks.1.attn.qkv.weight", "blocks.1.attn.qkv.weight"),
                         ("videomae.blocks.1.attn.q_bias", "blocks.1.attn.q_bias"),
                         ("videomae.blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.weight"),
                         ("fc_norm.weight", "fc_norm.weight"), ("classifier.weight", "head.weight"),
                         ("classifier.bias", "head.bias")):
        assert torch.equal(state[ours], original[theirs]), (ours, theirs)
    backbone = {"backbone." + k: v for k, v in original.items()}  # the V2 loader strips this prefix
    same = videomae.VideoMAEForVideoClassification.from_pretrained(
        None, config=c, state_dict=backbone)
    assert torch.equal(same.internal_state_dict()["classifier.weight"], original["head.weight"])


def test_videomae_v2_pretraining_checkpoint_loads_for_dual_masking(tmp_path):
    from v2_layout import v2_pretraining_shapes, random_state as v2_random_state

    original = v2_random_state(v2_pretraining_shapes(dim=44, depth=2, mlp=192, dec_dim=16, dec_depth=1, dec_mlp=69))
    torch.save({"model": original, "epoch": 1199}, tmp_path / "vit_g_hybrid_pt_1200e.pth")
    model, info = videomae.VideoMAEForPreTraining.from_pretrained(
        tmp_path / "vit_g_hybrid_pt_1200e.pth", num_frames=4, image_size=28, num_attention_heads=4,
        decoder_num_attention_heads=2, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    c = model.config
    assert (c.decoder_hidden_size, c.decoder_num_hidden_layers, c.decoder_intermediate_size, c.patch_dim) == \
        (16, 1, 69, 1176)
    state = model.internal_state_dict()
    for key in ("mask_token", "encoder_to_decoder.weight", "decoder.head.weight", "decoder.blocks.0.attn.qkv.weight"):
        assert torch.equal(state[key], original[key])
    assert torch.equal(state["videomae.norm.weight"], original["encoder.norm.weight"])
    pixels = torch.randn(2, 4, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    mask = videomae.tube_mask(c.grid_size, 0.5, 2, torch.Generator().manual_seed(1))
    dropped = videomae.masking.running_cell_mask(c.grid_size, 0.5, 2, torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(pixels, mask, decoder_masked_pos=dropped)
    assert out.logits.shape == (2, 4, 1176) and torch.isfinite(out.loss)


def test_config_inference_knows_the_giant_width():
    state = {"videomae.patch_embed.proj.weight": torch.zeros(1408, 3, 2, 14, 14, device="meta"),
             "videomae.blocks.0.mlp.fc1.weight": torch.zeros(6144, 1408, device="meta"),
             "videomae.blocks.0.attn.q_bias": torch.zeros(1408, device="meta"),
             "classifier.weight": torch.zeros(710, 1408, device="meta")}
    fields = checkpoint.infer_config_fields(state)
    assert (fields["num_attention_heads"], fields["patch_size"], fields["intermediate_size"],
            fields["num_labels"]) == (16, 14, 6144, 710)
