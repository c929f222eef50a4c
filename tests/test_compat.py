"""The transformers behaviours issue 13 lists, each as transformers 5.24 has it (each failed before).

transformers' own VideoMAE tests are run against our classes by `scripts/transformers_suite.py`;
docs/compatibility.md has its results. These tests pin the user-facing behaviours here.
"""

from __future__ import annotations

import json

import pytest
import torch

import videomae
from reference import MODEL_CLASSES, randomize, tiny
from videomae import VideoMAEConfig, VideoMAEImageProcessor

COMMON = dict(return_dict=False, output_hidden_states=True, output_attentions=True, dtype="float16",
              chunk_size_feed_forward=5, architectures=["BertModel"], id2label={0: "label"},
              label2id={"label": "0"}, problem_type="regression", is_decoder=True)


def _inputs(config: VideoMAEConfig, cls: str, batch: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    height, width = config.image_hw
    inputs = {"pixel_values": torch.randn(batch, config.num_frames, 3, height, width, generator=g)}
    if cls == "VideoMAEForPreTraining":
        mask = torch.zeros(batch, config.num_patches, dtype=torch.bool)
        mask[:, : config.num_patches // 2] = True
        inputs["bool_masked_pos"] = mask
    return inputs


# ----------------------------------------------------------------------------- config
def test_config_takes_the_arguments_every_transformers_config_takes():
    config = VideoMAEConfig(**COMMON)
    for key, value in COMMON.items():
        expected = torch.float16 if key == "dtype" else value
        assert getattr(config, key) == expected, key
    assert VideoMAEConfig(torch_dtype=torch.bfloat16).dtype == torch.bfloat16
    assert VideoMAEConfig(attn_implementation="eager")._attn_implementation == "eager"
    with pytest.raises(ValueError, match="attn_implementation 'flash_attention_2' is not supported"):
        VideoMAEConfig(attn_implementation="flash_attention_2")
    with pytest.raises(TypeError):
        VideoMAEConfig(num_frame=8)  # a typo is still an error


def test_config_json_carries_dtype_and_architectures_both_ways(tmp_path, transformers):
    VideoMAEConfig(dtype="bfloat16", architectures=["VideoMAEModel"]).save_pretrained(tmp_path)
    theirs = transformers.VideoMAEConfig.from_pretrained(tmp_path)
    assert theirs.dtype == torch.bfloat16 and theirs.architectures == ["VideoMAEModel"]
    ours = VideoMAEConfig.from_pretrained(tmp_path)
    assert ours.dtype == torch.bfloat16 and ours.architectures == ["VideoMAEModel"]


def test_heads_that_do_not_divide_the_width_are_refused_by_the_model_not_the_config():
    config = VideoMAEConfig(hidden_size=32)  # 12 heads: transformers accepts the config too
    config.num_attention_heads = 4
    assert videomae.VideoMAEModel(VideoMAEConfig(**tiny())).config.hidden_size == 32
    with pytest.raises(ValueError, match="hidden_size 32 is not a multiple of num_attention_heads 12"):
        videomae.VideoMAEModel(VideoMAEConfig(**tiny(num_attention_heads=12)))


def test_to_json_file_subfolder_and_num_labels_setter(tmp_path):
    config = VideoMAEConfig(**tiny(), num_labels=5)
    config.to_json_file(tmp_path / "c.json")
    assert VideoMAEConfig.from_json_file(tmp_path / "c.json").to_dict() == config.to_dict()
    config.save_pretrained(tmp_path / "sub")
    assert VideoMAEConfig.from_pretrained(tmp_path, subfolder="sub").to_dict() == config.to_dict()
    config.num_labels = 3
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"} and len(config.label2id) == 3


# ----------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("cls", MODEL_CLASSES)
def test_outputs_are_dicts_and_follow_the_config(cls):
    config = VideoMAEConfig(**tiny(num_labels=3))
    model = getattr(videomae, cls)(config).eval()
    out = model(**_inputs(config, cls))
    assert isinstance(out, dict)
    assert list(out) == list(out.keys()) and list(out.values()) == list(out.to_tuple())
    first = list(out)[0]
    assert out[first] is getattr(out, first) is out[0]
    config.output_attentions = config.output_hidden_states = True
    out = model(**_inputs(config, cls))
    assert len(out.attentions) == config.num_hidden_layers and len(out.hidden_states) == config.num_hidden_layers + 1
    assert list(out)[-2:] == ["hidden_states", "attentions"]
    config.return_dict = False
    assert isinstance(model(**_inputs(config, cls)), tuple)
    assert isinstance(model(**_inputs(config, cls), return_dict=True), dict)  # the argument wins


def test_compile_fullgraph_with_dict_outputs():
    config = VideoMAEConfig(**tiny(num_labels=3))
    model = videomae.VideoMAEForVideoClassification(config).eval()
    inputs = _inputs(config, "VideoMAEForVideoClassification")
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        out, expected = compiled(**inputs), model(**inputs)
    assert isinstance(out, dict) and list(out) == ["logits"]
    torch.testing.assert_close(out.logits, expected.logits)


# ----------------------------------------------------------------------------- weights
@pytest.mark.parametrize("cls", MODEL_CLASSES)
def test_state_dict_speaks_transformers_names_both_ways(cls, transformers):
    config = tiny(num_labels=3)
    ours = randomize(getattr(videomae, cls)(VideoMAEConfig(**config))).eval()
    theirs = getattr(transformers, cls)(transformers.VideoMAEConfig(**config)).eval()
    assert set(ours.state_dict()) == set(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())  # strict: every name matches
    inputs = _inputs(VideoMAEConfig(**config), cls)
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs)[0], theirs(**inputs)[0], rtol=1e-5, atol=1e-5)
    fresh = getattr(videomae, cls)(VideoMAEConfig(**config))
    assert not fresh.load_state_dict(theirs.state_dict()).missing_keys
    for key, value in ours.internal_state_dict().items():  # the fused projection stays inside
        torch.testing.assert_close(fresh.internal_state_dict()[key], value)
    assert any(k.endswith("attn.qkv.weight") for k in fresh.internal_state_dict())


def test_from_pretrained_options_of_transformers_5(tmp_path):
    config = VideoMAEConfig(**tiny())
    model = randomize(videomae.VideoMAEModel(config))
    model.save_pretrained(tmp_path)
    loaded = videomae.VideoMAEModel.from_pretrained(tmp_path, dtype=torch.bfloat16, attn_implementation="eager")
    assert loaded.dtype == torch.bfloat16 and loaded.config.dtype == torch.bfloat16
    assert loaded.config._attn_implementation == "eager"
    built, info = videomae.VideoMAEModel.from_pretrained(None, config=config, state_dict=model.state_dict(),
                                                         output_loading_info=True)
    assert info == {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": set(), "error_msgs": []}
    torch.testing.assert_close(built.state_dict(), model.state_dict())


def test_gradient_checkpointing_kwargs_and_meta_device():
    config = VideoMAEConfig(**tiny(num_labels=3))
    model = videomae.VideoMAEForVideoClassification(config)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert model.is_gradient_checkpointing
    model.train()
    model(**_inputs(config, "VideoMAEForVideoClassification"), labels=torch.tensor([0, 1])).loss.backward()
    assert model.classifier.weight.grad is not None
    with torch.device("meta"):
        meta = videomae.VideoMAEForPreTraining(VideoMAEConfig(**tiny(drop_path_rate=0.1)))
    assert meta.mask_token.is_meta


# ----------------------------------------------------------------------------- PEFT / LoRA
def test_lora_on_query_and_value_with_peft():
    peft = pytest.importorskip("peft")
    config = VideoMAEConfig(**tiny(num_labels=3))
    model = randomize(videomae.VideoMAEForVideoClassification(config)).eval()
    inputs = _inputs(config, "VideoMAEForVideoClassification")
    with torch.no_grad():
        before = model(**inputs).logits
    lora = peft.get_peft_model(model.unfuse_qkv(),
                               peft.LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier"]))
    wrapped = [n for n, m in lora.named_modules() if n.endswith(("query", "value")) and hasattr(m, "lora_A")]
    assert len(wrapped) == 2 * config.num_hidden_layers
    with torch.no_grad():
        torch.testing.assert_close(lora(**inputs).logits, before)  # LoRA starts at zero
    lora.train()
    lora(**inputs, labels=torch.tensor([0, 2])).loss.backward()
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    merged = lora.merge_and_unload().fuse_qkv()
    assert any(n.endswith("attn.qkv") for n, _ in merged.named_modules())


def test_unfused_model_saves_and_loads_the_same_checkpoint(tmp_path, transformers):
    config = VideoMAEConfig(**tiny())
    model = randomize(videomae.VideoMAEModel(config)).eval()
    inputs = _inputs(config, "VideoMAEModel")
    with torch.no_grad():
        expected = model(**inputs).last_hidden_state
    model.unfuse_qkv().save_pretrained(tmp_path)
    theirs = transformers.VideoMAEModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(theirs(**inputs).last_hidden_state, expected, rtol=1e-5, atol=1e-5)
    fused = videomae.VideoMAEModel.from_pretrained(tmp_path).unfuse_qkv()
    fused.load_state_dict(theirs.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fused(**inputs).last_hidden_state, expected, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- processor
def test_processor_json_file_and_to_dict_types(tmp_path):
    from PIL import Image

    processor = VideoMAEImageProcessor(image_mean=[0.1, 0.2, 0.3])
    data = processor.to_dict()
    assert data["image_mean"] == (0.1, 0.2, 0.3) and isinstance(data["image_std"], tuple)
    assert data["resample"] is Image.Resampling.BILINEAR
    processor.to_json_file(tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text())["resample"] == 2
    assert VideoMAEImageProcessor.from_json_file(tmp_path / "p.json") == processor
    assert "crop_size" in VideoMAEImageProcessor.valid_kwargs.__annotations__
