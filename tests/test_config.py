"""VideoMAEConfig: transformers' fields and defaults, config.json both ways, clear errors."""

from __future__ import annotations

import json

import pytest

import videomae
from videomae import PRESETS, VideoMAEConfig


FIELDS = ["image_size", "patch_size", "num_channels", "num_frames", "tubelet_size", "hidden_size",
          "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
          "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range", "layer_norm_eps",
          "use_mean_pooling", "decoder_num_attention_heads", "decoder_hidden_size",
          "decoder_num_hidden_layers", "decoder_intermediate_size", "norm_pix_loss", "num_labels"]


def test_defaults_equal_transformers(transformers):
    ours, theirs = VideoMAEConfig(), transformers.VideoMAEConfig()
    for name in FIELDS:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.qkv_bias == theirs.qv_bias is True
    assert ours.id2label == theirs.id2label


def test_reads_config_written_by_transformers(tmp_path, transformers):
    theirs = transformers.VideoMAEConfig(image_size=112, num_frames=8, qv_bias=False, use_mean_pooling=False,
                                         id2label={0: "cat", 1: "dog", 2: "eel"})
    theirs.save_pretrained(tmp_path)
    ours = VideoMAEConfig.from_pretrained(tmp_path)
    assert (ours.image_size, ours.num_frames, ours.qkv_bias, ours.use_mean_pooling) == (112, 8, False, False)
    assert ours.id2label == {0: "cat", 1: "dog", 2: "eel"} and ours.label2id["eel"] == 2
    assert ours.num_labels == 3


def test_reads_transformers_4x_qkv_bias_key(tmp_path):
    data = VideoMAEConfig().to_dict()
    data.pop("qv_bias")
    data["qkv_bias"] = False
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert VideoMAEConfig.from_pretrained(tmp_path).qkv_bias is False


def test_our_config_loads_in_transformers_with_extra_fields(tmp_path, transformers):
    ours = VideoMAEConfig(image_size=(96, 128), num_frames=8, qkv_bias=False, drop_path_rate=0.2,
                          id2label={0: "a", 1: "b", 2: "c"})
    ours.save_pretrained(tmp_path)
    theirs = transformers.VideoMAEConfig.from_pretrained(tmp_path)
    assert list(theirs.image_size) == [96, 128]
    assert theirs.qv_bias is False and theirs.num_frames == 8
    assert theirs.id2label == {0: "a", 1: "b", 2: "c"}
    assert VideoMAEConfig.from_pretrained(tmp_path) == ours


def test_round_trip_keeps_unknown_keys(tmp_path):
    data = {**VideoMAEConfig().to_dict(), "architectures": ["VideoMAEForPreTraining"], "some_future_key": 1}
    (tmp_path / "config.json").write_text(json.dumps(data))
    config = VideoMAEConfig.from_pretrained(tmp_path)
    out = config.to_dict()
    assert out["architectures"] == ["VideoMAEForPreTraining"] and out["some_future_key"] == 1


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets(name):
    config = VideoMAEConfig.from_preset(name, num_frames=8)
    assert config.hidden_size == PRESETS[name]["hidden_size"] and config.num_frames == 8
    assert config.hidden_size % config.num_attention_heads == 0


def test_unknown_preset_and_typo_are_errors():
    with pytest.raises(ValueError, match="unknown VideoMAE preset 'tiny'"):
        VideoMAEConfig.from_preset("tiny")
    with pytest.raises(TypeError):
        VideoMAEConfig(num_frame=8)  # typo
    with pytest.raises(TypeError, match="no field 'num_frame'"):
        VideoMAEConfig.from_dict({}, num_frame=8)


@pytest.mark.parametrize("fields,message", [
    (dict(num_frames=15), "num_frames 15 is not divisible by tubelet_size 2"),
    (dict(image_size=100), "image_size 100x100 is not divisible by patch_size 16"),
    (dict(num_frames="16"), "num_frames must be an int"),
    (dict(qkv_bias="yes"), "qkv_bias must be true or false"),
    (dict(hidden_act="tanh"), "hidden_act 'tanh'"),
    (dict(num_labels=3, id2label={0: "a"}), "num_labels=3 but id2label has 1"),
    (dict(drop_path_rate=1.5), "drop_path_rate"),
])
def test_invalid_fields_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        VideoMAEConfig(**fields)


def test_config_file_errors_name_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(ValueError, match=r"config.json: config has model_type 'vit'"):
        VideoMAEConfig.from_pretrained(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        VideoMAEConfig.from_pretrained(tmp_path)
    path.write_text(json.dumps({"num_frames": 15}))
    with pytest.raises(ValueError, match="config.json: .*num_frames 15"):
        VideoMAEConfig.from_pretrained(tmp_path)


def test_num_labels_override_replaces_label_names():
    config = VideoMAEConfig(id2label={0: "a", 1: "b"})
    assert config.copy(num_labels=5).id2label == {i: f"LABEL_{i}" for i in range(5)}


def test_public_api_from_package_root():
    for name in ["VideoMAEConfig", "VideoMAEModel", "VideoMAEForPreTraining", "VideoMAEForVideoClassification",
                 "tube_mask", "random_mask", "patchify", "unpatchify", "pretraining_targets", "reconstruct"]:
        assert hasattr(videomae, name), name
