"""Bad input to the models, configs, checkpoints and training entry points, tried on purpose
(the video files, the processor and the command line: test_reliability_inputs.py, whose
docstring records the decisions both follow). Every case is a row of a table: the input, and
the exact exception it must raise with fragments its message must hold, or for an odd but valid
input the result it must give.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from reliability_helpers import TINY, RunsCode, raises_exactly, time_limit  # noqa: F401 (time_limit: autouse)
from safetensors.torch import load_file, save_file
from train_fixtures import FAST, make_motion_videos
from video_fixtures import pattern_frames, write_video

from videomae import (
    VideoMAEConfig,
    VideoMAEForPreTraining,
    VideoMAEForVideoClassification,
    VideoMAEModel,
)


# =========================================================================== the models
@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    config = VideoMAEConfig(**TINY)
    return {
        "encoder": VideoMAEModel(config).eval(),
        "pretraining": VideoMAEForPreTraining(config).eval(),
        "classifier": VideoMAEForVideoClassification(VideoMAEConfig(**TINY, num_labels=3)).eval(),
        "bf16 encoder": VideoMAEModel(config).eval().to(torch.bfloat16),
        "multi-label classifier": VideoMAEForVideoClassification(
            VideoMAEConfig(**TINY, num_labels=3, problem_type="multi_label_classification")).eval(),
    }


def _pixels(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)


def _mask(batch=2, counts=(16, 16), dtype=torch.bool):
    mask = torch.zeros(batch, 32, dtype=torch.bool)
    for i, count in enumerate(counts):
        mask[i, :count] = True
    return mask.to(dtype)


MODEL_ERRORS = [
    ("rank 4", "encoder", lambda: (_pixels(4, 3, 32, 32),), {}, ["5 dimensions", "(4, 3, 32, 32)"]),
    ("rank 6", "encoder", lambda: (_pixels(1, 1, 4, 3, 32, 32),), {}, ["5 dimensions"]),
    ("channels last", "encoder", lambda: (_pixels(1, 4, 32, 32, 3),), {}, ["32 channels", "expects 3"]),
    ("frames", "classifier", lambda: (_pixels(1, 8, 3, 32, 32),), {}, ["8 frames", "expects 4"]),
    ("size", "pretraining", lambda: (_pixels(2, 4, 3, 48, 32), _mask()), {}, ["48x32", "expects 32x32"]),
    ("empty batch", "encoder", lambda: (_pixels(0, 4, 3, 32, 32),), {}, ["empty batch"]),
    ("numpy pixels", "encoder", lambda: (_pixels(1, 4, 3, 32, 32).numpy(),), {}, ["must be a tensor", "ndarray"]),
    ("uint8 pixels", "encoder", lambda: (torch.zeros(1, 4, 3, 32, 32, dtype=torch.uint8),), {},
     ["floating point", "uint8"]),
    ("float64 pixels", "encoder", lambda: (_pixels(1, 4, 3, 32, 32, dtype=torch.float64),), {},
     ["torch.float64", "weights are torch.float32"]),
    ("bf16 pixels, f32 model", "classifier", lambda: (_pixels(1, 4, 3, 32, 32, dtype=torch.bfloat16),), {},
     ["torch.bfloat16", "weights are torch.float32"]),
    ("f32 pixels, bf16 model", "bf16 encoder", lambda: (_pixels(1, 4, 3, 32, 32),), {},
     ["torch.float32", "weights are torch.bfloat16", "autocast"]),
    ("mask missing", "pretraining", lambda: (_pixels(2, 4, 3, 32, 32),), {}, ["needs bool_masked_pos"]),
    ("mask length", "pretraining", lambda: (_pixels(2, 4, 3, 32, 32), _mask()[:, :31]), {},
     ["(batch=2, num_patches=32)", "(2, 31)"]),
    ("mask unequal counts", "encoder", lambda: (_pixels(2, 4, 3, 32, 32), _mask(counts=(3, 5))), {},
     ["same number of tokens", "[3, 5]"]),
    ("mask int", "pretraining", lambda: (_pixels(2, 4, 3, 32, 32), _mask(dtype=torch.long) * 2), {},
     ["bool tensor", "torch.int64"]),
    ("mask float", "encoder", lambda: (_pixels(2, 4, 3, 32, 32), _mask(dtype=torch.float32)), {},
     ["bool tensor", "torch.float32"]),
    ("mask list", "pretraining", lambda: (_pixels(2, 4, 3, 32, 32), _mask().tolist()), {}, ["must be a tensor"]),
    ("mask hides nothing", "pretraining", lambda: (_pixels(2, 4, 3, 32, 32), _mask(counts=(0, 0))), {},
     ["masks no token"]),
    ("label too big", "classifier", lambda: (_pixels(2, 4, 3, 32, 32),), {"labels": torch.tensor([0, 3])},
     ["[0, 3)", "[3]"]),
    ("label negative", "classifier", lambda: (_pixels(2, 4, 3, 32, 32),), {"labels": torch.tensor([-2, 1])},
     ["[0, 3)", "[-2]"]),
    ("labels batch", "classifier", lambda: (_pixels(2, 4, 3, 32, 32),), {"labels": torch.tensor([0, 1, 2])},
     ["batch_size (2)", "batch_size (3)"]),
    ("multi-label shape", "multi-label classifier", lambda: (_pixels(2, 4, 3, 32, 32),), {"labels": torch.ones(2, 2)},
     ["multi-label targets", "(2, 3)", "(2, 2)"]),
    ("head_mask", "encoder", lambda: (_pixels(1, 4, 3, 32, 32),), {"head_mask": torch.ones(3)},
     ["head_mask", "(1, 3)"]),
]


@pytest.mark.parametrize("case, model, args, kwargs, fragments", MODEL_ERRORS, ids=[c[0] for c in MODEL_ERRORS])
def test_models_refuse_bad_tensors_with_value_errors(models, case, model, args, kwargs, fragments):
    with torch.no_grad(), raises_exactly(ValueError, *fragments):
        models[model](*args(), **kwargs)


def test_non_finite_pixels_give_non_finite_outputs_not_plausible_ones(models):
    """The decision: the processor refuses NaN and inf (above); a model that is handed them anyway
    does not check (that costs a device sync), but its outputs show it: every one is non-finite."""
    pixels = _pixels(2, 4, 3, 32, 32)
    pixels[0, 1, 2, 3, 4] = float("nan")
    with torch.no_grad():
        logits = models["classifier"](pixels).logits
        loss = models["pretraining"](pixels, _mask()).loss
    assert not bool(torch.isfinite(logits[0]).any()) and bool(torch.isfinite(logits[1]).all())
    assert not bool(torch.isfinite(loss))


def test_odd_but_valid_model_input(models):
    with torch.no_grad():
        listed = models["classifier"](_pixels(2, 4, 3, 32, 32), labels=[0, 2]).loss  # labels as a list
        as_tensor = models["classifier"](_pixels(2, 4, 3, 32, 32), labels=torch.tensor([0, 2])).loss
        assert torch.equal(listed, as_tensor)
        with torch.autocast("cpu", torch.bfloat16):  # float32 pixels into a bf16 model, under autocast
            out = models["bf16 encoder"](_pixels(1, 4, 3, 32, 32)).last_hidden_state
        assert out.shape == (1, 32, 32) and bool(torch.isfinite(out.float()).all())
        everything = models["pretraining"](_pixels(2, 4, 3, 32, 32), _mask(counts=(32, 32))).loss
        assert bool(torch.isfinite(everything))


# =========================================================================== configs
CONFIG_ERRORS = [
    (dict(num_frames=4, tubelet_size=3), ["num_frames 4 is not divisible by tubelet_size 3"]),
    (dict(image_size=30, patch_size=8), ["image_size 30x30 is not divisible by patch_size 8"]),
    (dict(image_size=[32, 36]), ["image_size 32x36 is not divisible by patch_size 8"]),
    (dict(num_attention_heads=0), ["num_attention_heads must be positive, got 0"]),
    (dict(decoder_num_attention_heads=0), ["decoder_num_attention_heads must be positive"]),
    (dict(hidden_size=0), ["hidden_size must be positive"]),
    (dict(num_frames=0), ["num_frames must be positive"]),
    (dict(image_size=0), ["image_size height must be positive"]),
    (dict(num_hidden_layers=-1), ["num_hidden_layers must be >= 0"]),
    (dict(intermediate_size=-5), ["intermediate_size must be positive, got -5"]),
    (dict(hidden_dropout_prob=1.5), ["hidden_dropout_prob must be in [0, 1]"]),
    (dict(layer_norm_eps=0.0), ["layer_norm_eps must be positive"]),
    (dict(num_labels=-1), ["num_labels must be a non-negative int, got -1"]),
    (dict(num_labels="3"), ["num_labels must be a non-negative int, got '3'"]),
    (dict(id2label={"cat": "dog"}), ["id2label keys must be class indices", "cat"]),
    (dict(id2label=["a", "b"]), ["id2label must be a mapping, got list"]),
    (dict(image_size=[32, 32, 3]), ["image_size must be an int or [height, width]"]),
    (dict(hidden_size=32.0), ["hidden_size must be an int, got 32.0"]),
    (dict(patch_size=None), ["patch_size must be an int, got None"]),
    (dict(norm_pix_loss="false"), ["norm_pix_loss must be true or false"]),
    (dict(problem_type="ranking"), ["problem_type 'ranking'"]),
]


@pytest.mark.parametrize("fields, fragments", CONFIG_ERRORS, ids=[str(c[0]) for c in CONFIG_ERRORS])
def test_config_fields_out_of_range_or_of_the_wrong_type_are_named(fields, fragments):
    with raises_exactly(ValueError, "VideoMAEConfig", *fragments):
        VideoMAEConfig(**{**TINY, **fields})


CONFIG_FILES = [
    ("list", [1, 2], ValueError, ["config.json", "expected a JSON object, got list"]),
    ("not json", "{'single': 'quotes'}", ValueError, ["config.json", "not valid JSON"]),
    ("string size", {"hidden_size": "768"}, ValueError, ["config.json", "hidden_size must be an int, got '768'"]),
    ("null size", {"num_frames": None}, ValueError, ["config.json", "num_frames must be an int, got None"]),
    ("other model", {"model_type": "videomae_v2"}, ValueError, ["config.json", "model_type 'videomae_v2'"]),
    ("bad labels", {"id2label": {"x": "cat"}}, ValueError, ["config.json", "id2label keys"]),
]


@pytest.mark.parametrize("case, content, error, fragments", CONFIG_FILES, ids=[c[0] for c in CONFIG_FILES])
def test_bad_config_files_name_the_file_and_the_field(tmp_path, case, content, error, fragments):
    (tmp_path / "config.json").write_text(content if isinstance(content, str) else json.dumps(content))
    with raises_exactly(error, str(tmp_path / "config.json"), *fragments):
        VideoMAEConfig.from_pretrained(tmp_path)


def test_a_config_json_with_some_keys_takes_defaults_for_the_rest(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"num_frames": 8, "image_size": 112, "foo": 1}))
    config = VideoMAEConfig.from_pretrained(tmp_path)
    default = VideoMAEConfig()
    assert (config.num_frames, config.image_size) == (8, 112) and config.extra == {"foo": 1}
    for name in ("hidden_size", "patch_size", "tubelet_size", "num_attention_heads", "decoder_hidden_size",
                 "norm_pix_loss", "qkv_bias", "use_mean_pooling", "layer_norm_eps", "num_labels"):
        assert getattr(config, name) == getattr(default, name), name


# =========================================================================== checkpoints
@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "model"
    torch.manual_seed(0)
    VideoMAEForVideoClassification(VideoMAEConfig(**TINY, num_labels=3)).save_pretrained(folder)
    return folder


def _copy(saved: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    return folder


def _cut(fraction: float = 0.0, size: int | None = None):
    def damage(folder):
        path = folder / "model.safetensors"
        data = path.read_bytes()
        path.write_bytes(data[: size if size is not None else int(len(data) * fraction)])
        return path
    return damage


def _random_bytes(folder):
    path = folder / "model.safetensors"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _as_bin(folder, transform=lambda data: data):
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    path = folder / "pytorch_model.bin"
    torch.save(transform(state), path)
    return path


def _truncated_bin(folder):
    path = _as_bin(folder)
    path.write_bytes(path.read_bytes()[:2000])
    return path


def _evil_bin(folder):
    return _as_bin(folder, lambda state: {**state, "payload": RunsCode(folder / "pwned")})


def _wrong_shape(folder):
    path = folder / "model.safetensors"
    state = load_file(str(path))
    state["classifier.weight"] = torch.zeros(5, 32)
    save_file(state, str(path))
    return path


def _sharded(shard_name, index_text=None):
    def damage(folder):
        path = folder / "model.safetensors"
        state = load_file(str(path))
        path.unlink()
        save_file(state, str(folder / "model-00001-of-00001.safetensors"))
        index = {"metadata": {}, "weight_map": {key: shard_name for key in state}}
        (folder / "model.safetensors.index.json").write_text(index_text or json.dumps(index))
        return folder / "model.safetensors.index.json"
    return damage


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _video_as_weights(folder):
    path = folder / "weights.pth"
    path.write_bytes(Path(write_video(folder / "clip.mp4", pattern_frames(2, 16, 16))).read_bytes())
    return path


def _no_config(folder):
    (folder / "config.json").unlink()
    return folder / "config.json"


CHECKPOINT_ERRORS = [
    ("safetensors cut to 10 bytes", _cut(size=10), ValueError, ["not a readable safetensors file"]),
    ("safetensors cut at 50%", _cut(0.5), ValueError, ["not a readable safetensors file"]),
    ("safetensors cut at 90%", _cut(0.9), ValueError, ["not a readable safetensors file"]),
    ("safetensors of random bytes", _random_bytes, ValueError, ["not a readable safetensors file"]),
    ("truncated .bin", _truncated_bin, ValueError, ["not a readable PyTorch checkpoint"]),
    ("pickle that runs code", _evil_bin, ValueError, ["refused to load", "weights_only"]),
    # keys of another model: loaded as transformers does (every weight missing, named in a
    # warning); see test_checkpoint.test_checkpoint_without_videomae_keys_reports_every_weight_missing
    ("a weight of the wrong shape", _wrong_shape, ValueError, ["classifier.weight: checkpoint (5, 32), model (3, 32)",
                                                                "ignore_mismatched_sizes"]),
    ("shard index not JSON", _sharded("x", "{oops"), ValueError, ["not a valid shard index"]),
    ("shard missing", _sharded("model-00009-of-00009.safetensors"), FileNotFoundError,
     ["model-00009-of-00009.safetensors: no such weights file"]),
    ("shard outside the folder", _sharded("../model/model-00001-of-00001.safetensors"), ValueError,
     ["is not a file name in the index's folder"]),
    ("a video as weights", _video_as_weights, ValueError, ["not a readable PyTorch checkpoint"]),
    ("garbage after a pickle opcode", lambda folder: _write_bytes(folder / "garbage.pth", b"\x80\x02" + b"rubbish" * 9),
     ValueError, ["not a readable PyTorch checkpoint", "IndexError"]),
    ("no config.json", _no_config, FileNotFoundError, ["no config.json in this folder"]),
]


@pytest.mark.parametrize("case, damage, error, fragments", CHECKPOINT_ERRORS, ids=[c[0] for c in CHECKPOINT_ERRORS])
def test_damaged_or_hostile_checkpoints_are_refused_by_name(saved, tmp_path, case, damage, error, fragments):
    folder = _copy(saved, tmp_path)
    named = damage(folder)
    source = named if named.suffix == ".pth" else folder
    with raises_exactly(error, *fragments) as info:
        VideoMAEForVideoClassification.from_pretrained(source)
    assert named.name in str(info.value) or str(folder) in str(info.value)
    assert not (folder / "pwned").exists()


def test_missing_weights_are_named_and_initialised_not_silently_zero(saved, tmp_path, caplog):
    folder = _copy(saved, tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    dropped = ["fc_norm.weight", "classifier.bias"]
    save_file({k: v for k, v in state.items() if k not in dropped}, str(folder / "model.safetensors"))
    with caplog.at_level(logging.WARNING, logger="videomae"):
        model, info = VideoMAEForVideoClassification.from_pretrained(folder, output_loading_info=True)
    assert info["missing_keys"] == set(dropped)
    assert all(name in caplog.text for name in dropped) and "newly initialised" in caplog.text
    assert torch.equal(model.fc_norm.weight, torch.ones(32)) and torch.equal(model.classifier.bias, torch.zeros(3))
    assert torch.equal(model.classifier.weight, state["classifier.weight"])


def test_a_config_json_with_some_keys_loads_a_model(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    full = json.loads((folder / "config.json").read_text())
    keep = ["image_size", "patch_size", "num_frames", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "id2label"]
    (folder / "config.json").write_text(json.dumps({k: full[k] for k in keep}))
    model = VideoMAEForVideoClassification.from_pretrained(folder)
    assert model.config.tubelet_size == 2 and model.config.use_mean_pooling and model.config.num_labels == 3
    reference = VideoMAEForVideoClassification.from_pretrained(saved)
    pixels = _pixels(1, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(pixels).logits, reference(pixels).logits, rtol=0, atol=0)


# =========================================================================== training entry points
@pytest.fixture(scope="module")
def motion(tmp_path_factory) -> Path:
    return make_motion_videos(tmp_path_factory.mktemp("motion"), per_class=2, num_frames=8)


def _train_cases(motion: Path, tmp: Path) -> dict:
    (tmp / "empty").mkdir(exist_ok=True)
    (tmp / "options.json").write_text("{epochs: 1}")
    (tmp / "labels.txt").write_text(f"{motion}/left/00.mp4 walking\n")
    (tmp / "classes.txt").write_text("left\nright\n")
    (tmp / "model.json").write_text(json.dumps({**TINY, "num_frames": 5}))
    (tmp / "run_with_evil_state" / "checkpoint-00000001").mkdir(parents=True, exist_ok=True)
    torch.save({"train_state": RunsCode(tmp / "pwned")},
               tmp / "run_with_evil_state" / "checkpoint-00000001" / "training_state.pt")
    return {
        "no data": ("pretrain", dict(data=str(tmp / "nowhere")), FileNotFoundError, ["nowhere", "no such file"]),
        "empty folder": ("pretrain", dict(data=str(tmp / "empty")), ValueError, ["empty", "no videos found"]),
        "typo": ("pretrain", dict(data=str(motion), epoch=3), TypeError, ["no option 'epoch'", "'epochs'"]),
        "bad value": ("finetune", dict(data=str(motion), mixup=-1.0), ValueError, ["mixup"]),
        "options not JSON": ("pretrain", dict(options=str(tmp / "options.json")), ValueError,
                             ["options.json", "not valid JSON"]),
        "unknown class name": ("finetune", dict(data=str(tmp / "labels.txt"), labels=str(tmp / "classes.txt")),
                               ValueError, ["labels.txt:1", "label 'walking' is not a known class name"]),
        "labels file missing": ("finetune", dict(data=str(motion), labels=str(tmp / "names.txt")),
                                FileNotFoundError, ["names.txt"]),
        "bigger batch than data": ("pretrain", dict(data=str(motion), batch_size=64), ValueError,
                                   ["4 videos, fewer than one global batch of 64"]),
        "bad model config": ("pretrain", dict(data=str(motion), model=str(tmp / "model.json"), config_overrides={}),
                             ValueError, ["model.json", "num_frames 5 is not divisible by tubelet_size 2"]),
        "init_from missing": ("finetune", dict(data=str(motion), init_from=str(tmp / "nope.pth")), FileNotFoundError,
                              ["nope.pth"]),
        "evaluate missing model": ("evaluate", dict(data=str(motion), model=str(tmp / "no_model")), FileNotFoundError,
                                   ["no_model"]),
        "resume from a hostile checkpoint": ("pretrain", dict(data=str(motion),
                                                              output_dir=str(tmp / "run_with_evil_state"),
                                                              resume=True),
                                             ValueError, ["no checkpoint in", "training_state.pt",
                                                          "not a readable training checkpoint"]),
    }


TRAIN_CASES = ["no data", "empty folder", "typo", "bad value", "options not JSON", "unknown class name",
               "labels file missing", "bigger batch than data", "bad model config", "init_from missing",
               "evaluate missing model", "resume from a hostile checkpoint"]


@pytest.mark.parametrize("case", TRAIN_CASES)
def test_training_entry_points_refuse_bad_setups_before_training(motion, tmp_path, case):
    from videomae.train import evaluate, finetune, pretrain

    entry, options, error, fragments = _train_cases(motion, tmp_path)[case]
    entry_point = {"pretrain": pretrain, "finetune": finetune, "evaluate": evaluate}[entry]
    options = dict(options)
    positional = options.pop("options", None)
    common = dict(FAST, output_dir=str(tmp_path / "out"), epochs=1, batch_size=2)
    if entry == "evaluate":
        common = {k: v for k, v in common.items() if k in ("device", "num_workers", "progress", "precision",
                                                            "sampling_rate", "output_dir")}
    with raises_exactly(error, *fragments):
        if positional is not None:
            entry_point(positional)
        else:
            entry_point(**{**common, **options})
    assert not list((tmp_path / "out").glob("checkpoint-*"))  # it stopped before training
    assert not (tmp_path / "pwned").exists()


