"""Our models against transformers on the same weights: outputs, hidden states, attentions, losses."""

from __future__ import annotations

import pytest
import torch

import videomae
from reference import CONFIGS, MODEL_CLASSES, compare_outputs, randomize, tiny, transformers_config


def _inputs(cfg: dict, batch: int = 2, seed: int = 1):
    config = videomae.VideoMAEConfig(**cfg)
    g = torch.Generator().manual_seed(seed)
    h, w = config.image_hw
    pixels = torch.randn(batch, config.num_frames, config.num_channels, h, w, generator=g)
    mask = videomae.tube_mask(config.grid_size, 0.5, batch, generator=g)
    return config, pixels, mask


def _call(model, name: str, pixels, mask, labels=None):
    kwargs = dict(pixel_values=pixels, output_hidden_states=True, output_attentions=True)
    if name == "VideoMAEForPreTraining":
        kwargs["bool_masked_pos"] = mask
    if name == "VideoMAEForVideoClassification" and labels is not None:
        kwargs["labels"] = labels
    with torch.no_grad():
        return model(**kwargs)


def _skip_unsupported(name: str, cfg: dict) -> None:
    if name == "VideoMAEForPreTraining" and cfg.get("num_channels", 3) != 3 and cfg.get("norm_pix_loss") is False:
        pytest.skip("transformers cannot un-normalise non-RGB targets")


@pytest.mark.parametrize("name", MODEL_CLASSES)
@pytest.mark.parametrize("variant", list(CONFIGS))
def test_transformers_checkpoint_loads_with_equal_outputs(tmp_path, name, variant, transformers):
    cfg = tiny(**CONFIGS[variant])
    _skip_unsupported(name, cfg)
    theirs = randomize(getattr(transformers, name)(transformers_config(**cfg)).eval())
    theirs.save_pretrained(tmp_path)
    ours = getattr(videomae, name).from_pretrained(tmp_path)
    _, pixels, mask = _inputs(cfg)
    labels = torch.tensor([0, 1])
    compare_outputs(_call(ours, name, pixels, mask, labels), _call(theirs, name, pixels, mask, labels))


@pytest.mark.parametrize("name", MODEL_CLASSES)
@pytest.mark.parametrize("variant", ["default", "no_mean_pooling", "no_qkv_bias", "non_square", "six_frames"])
def test_our_checkpoint_loads_in_transformers_with_equal_outputs(tmp_path, name, variant, transformers):
    cfg = tiny(**CONFIGS[variant])
    ours = randomize(getattr(videomae, name)(videomae.VideoMAEConfig(**cfg, drop_path_rate=0.1)).eval())
    ours.save_pretrained(tmp_path)
    theirs = getattr(transformers, name).from_pretrained(tmp_path, attn_implementation="eager").eval()
    _, pixels, mask = _inputs(cfg)
    compare_outputs(_call(ours, name, pixels, mask), _call(theirs, name, pixels, mask))


@pytest.mark.parametrize("problem,labels", [
    ("single", torch.tensor([2, 0])),
    ("multi", torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])),
])
def test_classification_losses_match(tmp_path, problem, labels, transformers):
    cfg = tiny(num_labels=3)
    theirs = randomize(transformers.VideoMAEForVideoClassification(transformers_config(**cfg)).eval())
    theirs.save_pretrained(tmp_path)
    ours = videomae.VideoMAEForVideoClassification.from_pretrained(tmp_path)
    _, pixels, _ = _inputs(cfg)
    a = ours(pixels, labels=labels)
    b = theirs(pixel_values=pixels, labels=labels)
    compare_outputs(a, b)
    expected = "single_label_classification" if problem == "single" else "multi_label_classification"
    assert ours.config.problem_type == expected


def test_regression_loss_matches(tmp_path, transformers):
    cfg = tiny(num_labels=1)
    theirs = randomize(transformers.VideoMAEForVideoClassification(transformers_config(**cfg)).eval())
    theirs.save_pretrained(tmp_path)
    ours = videomae.VideoMAEForVideoClassification.from_pretrained(tmp_path)
    _, pixels, _ = _inputs(cfg)
    labels = torch.tensor([0.5, -1.0])
    compare_outputs(ours(pixels, labels=labels), theirs(pixel_values=pixels, labels=labels))
    assert ours.config.problem_type == "regression"


def test_head_mask_multiplies_attention_probabilities_as_transformers_4x_did():
    """transformers 5 dropped head_mask; 4.x multiplied attention probabilities by it, so a
    masked head's attention is zero and the layer's other heads are unchanged."""
    cfg = videomae.VideoMAEConfig(**tiny())
    model = randomize(videomae.VideoMAEModel(cfg)).eval()
    _, pixels, _ = _inputs(tiny())
    full = model(pixels, output_attentions=True)
    head_mask = torch.ones(cfg.num_hidden_layers, cfg.num_attention_heads)
    same = model(pixels, head_mask=head_mask)
    torch.testing.assert_close(same.last_hidden_state, full.last_hidden_state, rtol=1e-5, atol=1e-5)
    head_mask[0, 1] = 0.0
    masked = model(pixels, head_mask=head_mask, output_attentions=True)
    assert torch.all(masked.attentions[0][:, 1] == 0)
    torch.testing.assert_close(masked.attentions[0][:, 0], full.attentions[0][:, 0])
    assert not torch.allclose(masked.last_hidden_state, full.last_hidden_state)


def test_return_dict_false_gives_tuples():
    cfg = videomae.VideoMAEConfig(**tiny())
    model = videomae.VideoMAEForVideoClassification(cfg).eval()
    _, pixels, _ = _inputs(tiny())
    out = model(pixels, labels=torch.tensor([0, 1]), return_dict=False)
    assert isinstance(out, tuple) and len(out) == 2
    as_dict = model(pixels, labels=torch.tensor([0, 1]))
    torch.testing.assert_close(out[1], as_dict.logits)
    assert as_dict[0] is as_dict.loss and as_dict["logits"] is as_dict.logits


def test_sdpa_path_equals_explicit_path():
    cfg = videomae.VideoMAEConfig(**tiny())
    model = randomize(videomae.VideoMAEModel(cfg)).eval()
    _, pixels, mask = _inputs(tiny())
    fast = model(pixels, bool_masked_pos=mask).last_hidden_state
    explicit = model(pixels, bool_masked_pos=mask, output_attentions=True).last_hidden_state
    torch.testing.assert_close(fast, explicit, rtol=1e-5, atol=1e-6)


def test_masked_embedding_equals_full_embedding_then_gather():
    """The visible-only patch projection must equal projecting everything and dropping tokens."""
    cfg = videomae.VideoMAEConfig(**tiny())
    model = randomize(videomae.VideoMAEModel(cfg))
    _, pixels, mask = _inputs(tiny())
    full = model.patch_embed(pixels, None)
    index, _ = videomae.masking.split_indices(mask, int(mask[0].sum()))
    visible = model.patch_embed(pixels, index)
    torch.testing.assert_close(visible, full[~mask].reshape(2, -1, cfg.hidden_size), rtol=1e-5, atol=1e-5)


def test_gradient_checkpointing_gives_same_gradients():
    cfg = videomae.VideoMAEConfig(**tiny())
    _, pixels, mask = _inputs(tiny())
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = videomae.VideoMAEForPreTraining(cfg)
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(pixels, mask).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_drop_path_is_active_in_training_only():
    cfg = videomae.VideoMAEConfig(**tiny(), drop_path_rate=0.5)
    model = videomae.VideoMAEModel(cfg)
    rates = [b.drop_path1.rate for b in model.blocks[1:]]
    assert isinstance(model.blocks[0].drop_path1, torch.nn.Identity)  # first block's rate is 0
    assert rates[-1] == pytest.approx(0.5)
    _, pixels, _ = _inputs(tiny())
    model.eval()
    a, b = model(pixels).last_hidden_state, model(pixels).last_hidden_state
    torch.testing.assert_close(a, b)
    model.train()
    torch.manual_seed(0)
    c = model(pixels).last_hidden_state
    assert not torch.allclose(a, c)


def test_pretraining_loss_uses_the_models_image_statistics():
    """With other statistics than ImageNet's, the loss compares with pixels un-normalised by them."""
    cfg = videomae.VideoMAEConfig(**tiny(norm_pix_loss=False))
    _, pixels, mask = _inputs(tiny())
    model = randomize(videomae.VideoMAEForPreTraining(cfg)).eval()
    assert (model.image_mean, model.image_std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    model.image_mean, model.image_std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    with torch.no_grad():
        out = model(pixels, mask)
    targets = videomae.patchify(pixels * 0.5 + 0.5, 2, 8)[mask].reshape(2, -1, out.logits.shape[-1])
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits, targets))


def test_backward_reaches_every_parameter():
    cfg = videomae.VideoMAEConfig(**tiny())
    _, pixels, mask = _inputs(tiny())
    model = videomae.VideoMAEForPreTraining(cfg)
    model(pixels, mask).loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused == []


# --------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def small_models():
    cfg = videomae.VideoMAEConfig(**tiny())
    return cfg, videomae.VideoMAEModel(cfg).eval(), videomae.VideoMAEForPreTraining(cfg).eval()


@pytest.mark.parametrize("shape,message", [
    ((4, 3, 32, 32), "5 dimensions"),
    ((1, 4, 1, 32, 32), "1 channels"),
    ((1, 6, 3, 32, 32), "6 frames"),
    ((1, 4, 3, 32, 40), "32x40"),
])
def test_wrong_pixel_shapes_are_named(small_models, shape, message):
    _, model, _ = small_models
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(shape))


def test_integer_pixels_are_refused(small_models):
    _, model, _ = small_models
    with pytest.raises(ValueError, match="floating point"):
        model(torch.zeros(1, 4, 3, 32, 32, dtype=torch.uint8))


def test_bad_masks_are_named(small_models):
    cfg, model, pretrain = small_models
    pixels = torch.zeros(2, 4, 3, 32, 32)
    with pytest.raises(ValueError, match="shape"):
        model(pixels, bool_masked_pos=torch.zeros(2, cfg.num_patches - 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="batch dimension"):
        model(pixels, bool_masked_pos=torch.zeros(cfg.num_patches, dtype=torch.bool))
    unequal = torch.zeros(2, cfg.num_patches, dtype=torch.bool)
    unequal[0, :3] = True
    unequal[1, :5] = True
    with pytest.raises(ValueError, match=r"same number of tokens.*\[3, 5\]"):
        model(pixels, bool_masked_pos=unequal)
    with pytest.raises(ValueError, match="needs bool_masked_pos"):
        pretrain(pixels)


def test_labels_out_of_range_are_named():
    model = videomae.VideoMAEForVideoClassification(videomae.VideoMAEConfig(**tiny(num_labels=3)))
    with pytest.raises(ValueError, match=r"\[0, 3\).*\[7\]"):
        model(torch.zeros(2, 4, 3, 32, 32), labels=torch.tensor([1, 7]))


def _pretraining(seed: int = 0):
    config = videomae.VideoMAEConfig(**tiny())
    torch.manual_seed(seed)
    return randomize(videomae.VideoMAEForPreTraining(config)).eval(), config


def test_decoder_mask_of_every_visible_token_is_v1():
    model, config = _pretraining()
    _, pixels, mask = _inputs(tiny())
    with torch.no_grad():
        v1 = model(pixels, mask)
        dual = model(pixels, mask, decoder_masked_pos=~mask)
    torch.testing.assert_close(dual.logits, v1.logits)
    torch.testing.assert_close(dual.loss, v1.loss)


def test_dual_masking_decodes_the_kept_positions_and_scores_the_hidden_ones():
    model, config = _pretraining()
    _, pixels, mask = _inputs(tiny())
    dropped = videomae.masking.running_cell_mask(config.grid_size, 0.5, 2, torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = model(pixels, mask, decoder_masked_pos=dropped)
        # written out: visible tokens + mask tokens at every position the decoder mask keeps
        visible = torch.stack([(~m).nonzero()[:, 0] for m in mask])
        kept = torch.stack([(~d).nonzero()[:, 0] for d in dropped])
        x = model.encoder_to_decoder(model.videomae(pixels, mask).last_hidden_state)
        pos = model.position_embeddings[0]
        x = torch.cat([x + pos[visible], model.mask_token + pos[kept]], dim=1)
        for block in model.decoder.blocks:
            x, _ = block(x)
        logits = model.decoder.head(model.decoder.norm(x[:, -kept.shape[1]:]))
        targets = videomae.masking.pretraining_targets(pixels, None, 2, 8, True, kept)
        counts = torch.stack([m[k] for m, k in zip(mask, kept)]).float()  # hidden from the encoder, kept by the decoder
        loss = (((logits - targets) ** 2).mean(-1) * counts).sum() / counts.sum()
    assert out.logits.shape == (2, config.num_patches // 2, config.patch_dim)
    torch.testing.assert_close(out.logits, logits)
    torch.testing.assert_close(out.loss, loss)


# --------------------------------------------------------------------------- blocked attention (CPU bf16)
def test_blocked_attention_is_the_same_function_as_sdpa():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 50, 8, generator=g) for _ in range(3))  # 50 tokens: the last block is short
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    for block in (16, 50, 128):
        torch.testing.assert_close(videomae.modeling.blocked_attention(q, k, v, 8**-0.5, block), expected,
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("units, dtype, grad, blocked", [
    ("AVX512-BF16", torch.bfloat16, False, True),
    ("AMX bf16", torch.bfloat16, False, False),  # AMX: the fused kernel packs tiles for the unit
    (None, torch.bfloat16, False, False),
    ("AVX512-BF16", torch.float32, False, False),
    ("AVX512-BF16", torch.bfloat16, True, False),  # training keeps the fused kernel and its backward
])
def test_bf16_inference_on_avx512_bf16_cpus_uses_blocked_attention(monkeypatch, units, dtype, grad, blocked):
    calls = []
    original = videomae.modeling.blocked_attention
    monkeypatch.setattr(videomae.modeling, "blocked_attention", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr(videomae.devices, "cpu_bf16_units", lambda: units)
    config, pixels, _ = _inputs(tiny())
    model = videomae.VideoMAEForVideoClassification(config).eval()
    with torch.no_grad():
        expected = model(pixels).logits
    with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        logits = model(pixels).logits.float()
    assert len(calls) == (config.num_hidden_layers if blocked else 0)
    assert (logits - expected).norm() / expected.norm() < (3e-2 if dtype == torch.bfloat16 else 1e-6)
