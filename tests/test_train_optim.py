"""The recipe's optimizer: weight-decay and layer-decay groups, the lr schedule, options."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from train_fixtures import TINY_CONFIG

from videomae import VideoMAEConfig, VideoMAEForPreTraining, VideoMAEForVideoClassification, VideoMAEModel
from videomae.train import EvalOptions, FinetuneOptions, PretrainOptions
from videomae.train.optim import CosineSchedule, build_optimizer, param_groups, scaled_lr


def _config(**overrides):
    return VideoMAEConfig(**{**TINY_CONFIG, "num_hidden_layers": 3, **overrides})


def _groups_by_name(groups):
    return {name: group for group in groups for name in group["param_names"]}


def test_no_weight_decay_on_biases_norms_and_mask_token():
    model = VideoMAEForPreTraining(_config())
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.05, betas=(0.9, 0.95))
    by_name = _groups_by_name(optimizer.param_groups)
    assert set(by_name) == {n for n, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        expected = 0.0 if (param.ndim <= 1 or name == "mask_token") else 0.05
        assert by_name[name]["weight_decay"] == expected, name
    assert by_name["mask_token"]["weight_decay"] == 0.0
    assert by_name["videomae.blocks.0.attn.q_bias"]["weight_decay"] == 0.0
    assert by_name["videomae.blocks.0.norm1.weight"]["weight_decay"] == 0.0
    assert by_name["videomae.patch_embed.proj.weight"]["weight_decay"] == 0.05
    assert by_name["decoder.head.weight"]["weight_decay"] == 0.05
    assert {g["lr_scale"] for g in optimizer.param_groups} == {1.0} and len(optimizer.param_groups) == 2
    assert optimizer.defaults["betas"] == (0.9, 0.95)


def test_layer_decay_scales_lr_by_depth():
    model = VideoMAEForVideoClassification(_config(num_labels=5))
    decay, layers = 0.75, 3
    groups = param_groups(model, weight_decay=0.05, layer_decay=decay)
    by_name = _groups_by_name(groups)

    def scale(layer):
        return decay ** (layers + 1 - layer)

    assert by_name["videomae.patch_embed.proj.weight"]["layer_id"] == 0
    assert by_name["videomae.patch_embed.proj.weight"]["lr_scale"] == pytest.approx(scale(0))
    for i in range(layers):
        for suffix in ("attn.qkv.weight", "mlp.fc2.bias", "norm2.weight"):
            group = by_name[f"videomae.blocks.{i}.{suffix}"]
            assert group["layer_id"] == i + 1 and group["lr_scale"] == pytest.approx(scale(i + 1))
    for head in ("fc_norm.weight", "fc_norm.bias", "classifier.weight", "classifier.bias"):
        assert by_name[head]["layer_id"] == layers + 1 and by_name[head]["lr_scale"] == 1.0
    assert by_name["classifier.weight"]["weight_decay"] == 0.05
    assert by_name["classifier.bias"]["weight_decay"] == 0.0
    # the schedule's lr reaches each group times its scale
    optimizer = torch.optim.AdamW(groups, lr=1.0)
    CosineSchedule(peak_lr=2e-3, total_steps=10).apply(optimizer, 0)
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(2e-3 * group["lr_scale"])


@pytest.mark.parametrize("cls,prefix", [(VideoMAEModel, ""), (VideoMAEForPreTraining, "videomae."),
                                        (VideoMAEForVideoClassification, "videomae.")])
def test_every_model_class_puts_blocks_at_their_depth_and_heads_last(cls, prefix):
    """A bare encoder's names lack `videomae.`: its blocks must still get depths 1..L."""
    model = cls(_config(num_labels=5, use_mean_pooling=cls is not VideoMAEModel))
    layers = 3
    by_name = _groups_by_name(param_groups(model, weight_decay=0.05, layer_decay=0.5))
    assert by_name[f"{prefix}patch_embed.proj.weight"]["layer_id"] == 0
    assert by_name[f"{prefix}patch_embed.proj.weight"]["lr_scale"] == pytest.approx(0.5 ** 4)
    assert by_name[f"{prefix}patch_embed.proj.weight"]["weight_decay"] == 0.05
    for i in range(layers):
        group = by_name[f"{prefix}blocks.{i}.attn.qkv.weight"]
        assert (group["layer_id"], group["weight_decay"]) == (i + 1, 0.05)
        assert group["lr_scale"] == pytest.approx(0.5 ** (layers - i))
        assert by_name[f"{prefix}blocks.{i}.attn.q_bias"]["weight_decay"] == 0.0
    last = {"VideoMAEModel": f"{prefix}norm.weight", "VideoMAEForPreTraining": "decoder.head.weight",
            "VideoMAEForVideoClassification": "classifier.weight"}[cls.__name__]
    assert by_name[last]["layer_id"] == layers + 1 and by_name[last]["lr_scale"] == 1.0
    assert model.layer_ids() == {name: group["layer_id"] for name, group in by_name.items()}
    if cls is VideoMAEForPreTraining:
        assert model.layer_ids()["mask_token"] == 0 and "mask_token" in model.no_weight_decay()


def test_cosine_schedule_is_a_pure_function_of_the_step():
    s = CosineSchedule(peak_lr=1.0, total_steps=110, warmup_steps=10, min_lr=0.01, warmup_lr=0.0)
    assert s.lr(0) == 0.0
    assert s.lr(5) == pytest.approx(0.5)
    assert s.lr(10) == pytest.approx(1.0)
    assert s.lr(60) == pytest.approx(0.01 + 0.5 * 0.99)
    assert s.lr(110) == pytest.approx(0.01) and s.lr(500) == pytest.approx(0.01)
    lrs = [s.lr(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    # no hidden state: asked in any order, after being applied, each step gives the same rate
    forward = [s.lr(i) for i in range(0, 120, 7)]
    s.apply(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0), 50)
    assert [s.lr(i) for i in reversed(range(0, 120, 7))] == forward[::-1]
    assert scaled_lr(1.5e-4, 512) == pytest.approx(3e-4)


def test_options_defaults_are_the_papers_and_every_field_is_documented(tmp_path):
    pre, fine = PretrainOptions(), FinetuneOptions()
    assert (pre.mask_ratio, pre.mask_type, pre.base_lr, pre.betas, pre.weight_decay) == (0.9, "tube", 1.5e-4,
                                                                                          (0.9, 0.95), 0.05)
    assert (fine.layer_decay, fine.drop_path, fine.label_smoothing, fine.mixup, fine.cutmix) == (0.75, 0.1, 0.1,
                                                                                                0.8, 1.0)
    assert (fine.mixup_prob, fine.mixup_switch_prob, fine.betas) == (1.0, 0.5, (0.9, 0.999))
    for cls in (PretrainOptions, FinetuneOptions, EvalOptions):
        types = cls.field_types()
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
            assert f.name in types
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"epochs": 3, "betas": [0.8, 0.9], "data": "a.txt"}))
    options = PretrainOptions.load(config, epochs=5)
    assert (options.epochs, options.betas, options.data) == (5, (0.8, 0.9), "a.txt")
    with pytest.raises(TypeError, match="did you mean 'epochs'"):
        PretrainOptions.load(config, epoch=5)
    with pytest.raises(TypeError, match="expected an integer"):
        PretrainOptions.load(None, epochs="5")
    with pytest.raises(ValueError, match="mask_ratio"):
        PretrainOptions.load(None, mask_ratio=1.5)
    assert math.isclose(PretrainOptions.from_dict(options.to_dict()).betas[0], 0.8)


def test_protocol_presets_set_sampling_flip_and_views_and_explicit_options_win(tmp_path):
    from videomae.train.options import PROTOCOLS

    fine = FinetuneOptions()  # kinetics is the default and its preset is the defaults: nothing changes
    assert fine.protocol == "kinetics" and all(getattr(fine, k) == v for k, v in PROTOCOLS["kinetics"].items())
    ssv2 = FinetuneOptions.load(protocol="ssv2")
    assert (ssv2.sampling, ssv2.sampling_rate, ssv2.flip, ssv2.eval_num_clips, ssv2.eval_num_crops) == (
        "segments", 2, False, 2, 3)
    evaluation = EvalOptions.load(protocol="ssv2", model="m")  # no flip option: evaluation never flips
    assert (evaluation.sampling, evaluation.eval_num_clips, evaluation.eval_num_crops) == ("segments", 2, 3)
    # options given beside the protocol win over its preset
    mixed = FinetuneOptions.load(protocol="ssv2", flip=True, eval_num_clips=4, sampling="dense")
    assert (mixed.flip, mixed.eval_num_clips, mixed.sampling, mixed.sampling_rate) == (True, 4, "dense", 2)
    # a file is one level, the keywords (the command line's flags) the level above
    config = tmp_path / "options.json"
    config.write_text(json.dumps({"protocol": "ssv2", "eval_num_crops": 1}))
    from_file = FinetuneOptions.load(config, eval_num_clips=3)
    assert (from_file.sampling, from_file.flip, from_file.eval_num_crops, from_file.eval_num_clips) == (
        "segments", False, 1, 3)
    back = FinetuneOptions.load(config, protocol="kinetics")  # a protocol flag resets what the file's preset set
    assert (back.sampling, back.flip, back.eval_num_clips, back.eval_num_crops) == ("dense", True, 5, 3)
    assert FinetuneOptions.from_dict(ssv2.to_dict()) == ssv2  # an options.json reads back as written
    assert fine.replace(protocol="ssv2", eval_num_crops=1).sampling == "segments"
    assert fine.replace(protocol="ssv2", eval_num_crops=1).eval_num_crops == 1
    with pytest.raises(ValueError, match="protocol must be one of"):
        FinetuneOptions.load(protocol="something-something")
    with pytest.raises(ValueError, match="sampling must be one of"):
        EvalOptions.load(model="m", sampling="tsn")
    with pytest.raises(ValueError, match=r"constructor does not apply.*load\(protocol='ssv2'"):
        FinetuneOptions(protocol="ssv2")  # would train Kinetics-style under an SSv2 label
    with pytest.raises(TypeError, match="no option 'protocol'"):
        PretrainOptions.load(protocol="ssv2")  # pretraining has no protocol: it samples dense clips
