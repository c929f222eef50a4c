"""Typed options of the training entry points, with the paper's defaults.

Every option is a dataclass field with a type, a default and `metadata["help"]`, so a
command line can be generated from the fields. Options come from, in increasing priority:
the defaults, a JSON file, keyword overrides. The resolved options are written next to the
outputs (options.json), so a run can be repeated.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from ..data.gpu_decoders import GPU_DECODERS

OptionsT = TypeVar("OptionsT", bound="BaseOptions")


def _opt(default: Any, help: str, **kwargs: Any) -> Any:  # noqa: A002 - the CLI's word
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


_PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class BaseOptions:
    """Options shared by every entry point."""

    output_dir: str = _opt("runs/videomae", "folder for checkpoints, metrics.jsonl, options.json and plots")
    seed: int = _opt(0, "seed of model initialisation, data order, augmentation and masking")
    device: str = _opt("auto", "'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'")
    precision: str = _opt("auto", "'auto' (bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32), 'fp32', "
                                   "'bf16' or 'fp16' (with loss scaling)")
    num_workers: int | None = _opt(None, "DataLoader worker processes per GPU (None: the CPUs per process but one; "
                                         "0: load in the main process); with the GPU decoder ('nvdec'), "
                                         "loading threads")
    progress: bool = _opt(True, "show progress bars (rank 0 only)")
    log_every: int = _opt(10, "write a metrics.jsonl record every N optimizer steps")

    # -------------------------------------------------------------------------------- io
    @classmethod
    def field_types(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    @classmethod
    def from_dict(cls: type[OptionsT], data: dict[str, Any]) -> OptionsT:
        """Build from plain values (JSON), checking names and types; a `protocol` among them
        lays its preset beneath them (`with_protocol`)."""
        data = with_protocol(cls, data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in data if k not in names]
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, names, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise TypeError(f"{cls.__name__} has no option {', '.join(hints)}")
        types_ = cls.field_types()
        values = {k: _coerce(k, types_[k], v) for k, v in data.items()}
        options = cls(**values)
        options.validate()
        return options

    @classmethod
    def load(cls: type[OptionsT], config_file: str | os.PathLike | None = None, **overrides: Any) -> OptionsT:
        """Defaults < the JSON file `config_file` < keyword overrides. A `protocol` given at one
        level sets its preset at that level: the options beside it, and the level above, win."""
        data: dict[str, Any] = {}
        if config_file is not None:
            path = Path(config_file)
            try:
                data = json.loads(path.read_text())
            except FileNotFoundError:
                raise FileNotFoundError(f"options file {str(path)!r} does not exist") from None
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: not valid JSON ({err})") from None
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a JSON object of options, got {type(data).__name__}")
        data = with_protocol(cls, data)
        data.update(with_protocol(cls, overrides))
        return cls.from_dict(data)

    def replace(self: OptionsT, **changes: Any) -> OptionsT:
        """A copy with `changes`; a new `protocol` among them brings its preset, below the other changes."""
        return type(self).from_dict({**self.to_dict(), **with_protocol(type(self), changes)})

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    # ---------------------------------------------------------------------------- checks
    def validate(self) -> None:
        """Raise ValueError naming the option that is out of range."""
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0 (or None for automatic), got {self.num_workers}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every}")


@dataclass
class ClipOptions(BaseOptions):
    """Which data, and how clips are cut from it."""

    data: str = _opt("", "training data: a folder of videos (unlabeled / class folders) or a list file of "
                         "`path label` lines (space separated, or a CSV with a header)")
    data_root: str | None = _opt(None, "folder that relative paths in the list file are relative to "
                                       "(default: the list file's folder)")
    num_frames: int | None = _opt(None, "frames per clip (default: the model config's num_frames)")
    sampling_rate: int = _opt(4, "take every N-th frame of the video (4 on Kinetics, 2 on Something-Something); "
                                 "unused by segment sampling")
    image_size: int | None = _opt(None, "side of the square crops fed to the model (default: the model config's)")
    mean: tuple[float, float, float] = _opt(IMAGENET_DEFAULT_MEAN, "per-channel normalisation mean (ImageNet)")
    std: tuple[float, float, float] = _opt(IMAGENET_DEFAULT_STD, "per-channel normalisation std (ImageNet)")
    frame_stride: int | None = _opt(None, "the videos keep every N-th source frame (`videomae prep --frame-stride`); "
                                          "None: read it from the prep.json that `videomae prep` writes, else 1")
    decoder: str = _opt("pyav", "'pyav' (CPU, worker processes) or 'nvdec' (GPU decoding in threads of the training "
                                "process; needs PyNvVideoCodec: pip install videomae[gpu])")

    def validate(self) -> None:
        super().validate()
        if self.decoder not in ("pyav", *GPU_DECODERS):
            raise ValueError(f"decoder must be one of {('pyav', *GPU_DECODERS)}, got {self.decoder!r}")
        if self.frame_stride is not None and self.frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1 (or None), got {self.frame_stride}")
        if self.sampling_rate < 1:
            raise ValueError(f"sampling_rate must be >= 1, got {self.sampling_rate}")
        for name in ("num_frames", "image_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive, got {value}")


@dataclass
class TrainOptions(ClipOptions):
    """What pretraining and fine-tuning share: the optimiser, schedule and bookkeeping."""

    model: str = _opt("base", "model to build when not starting from a checkpoint: a preset "
                              "(small, base, large, huge, giant) or a config.json")
    init_from: str | None = _opt(None, "start from these weights: our folder, a transformers folder or hub id, "
                                       "or an original .pth checkpoint")
    config_overrides: dict[str, Any] = _opt({}, "model config fields to change, e.g. {\"hidden_size\": 384}")
    epochs: int = _opt(800, "number of epochs")
    batch_size: int = _opt(256, "global batch in videos per optimizer step: per-device batch x processes x "
                                "accumulation steps")
    per_device_batch_size: int | None = _opt(None, "videos per device per forward pass (default: batch_size / "
                                                   "(processes x accum_steps)); sets accum_steps")
    accum_steps: int = _opt(1, "gradient accumulation steps (ignored when per_device_batch_size is set)")
    num_sample: int = _opt(1, "repeated augmentation: clips drawn from each decoded video")
    base_lr: float = _opt(1.5e-4, "learning rate per 256 videos; lr = base_lr x batch_size / 256")
    lr: float | None = _opt(None, "absolute peak learning rate (overrides base_lr scaling)")
    min_lr: float = _opt(1e-5, "final learning rate of the cosine, per 256 videos (scaled like base_lr)")
    warmup_lr: float = _opt(1e-6, "learning rate at step 0, per 256 videos (scaled like base_lr)")
    warmup_epochs: float = _opt(40.0, "epochs of linear warmup")
    warmup_steps: int | None = _opt(None, "optimizer steps of warmup (overrides warmup_epochs)")
    weight_decay: float = _opt(0.05, "AdamW weight decay (never on biases, norms or tokens)")
    betas: tuple[float, float] = _opt((0.9, 0.95), "AdamW betas")
    eps: float = _opt(1e-8, "AdamW epsilon")
    clip_grad: float | None = _opt(None, "clip the gradient norm to this value (None: no clipping)")
    train_crop: str = _opt("multiscale", "'multiscale' (corner/centre crops of scale 1, .875, .75, .66) or "
                                         "'random_resized' (scale 0.08-1, aspect 3/4-4/3)")
    flip: bool = _opt(True, "random horizontal flip")
    short_side: int | None = _opt(None, "decode frames resized to this short side before cropping "
                                        "(default: image_size x 320 / 224)")
    max_steps: int | None = _opt(None, "stop after this many optimizer steps (the schedule still spans all "
                                       "epochs, so a later resume continues it)")
    checkpoint_every: int = _opt(1000, "write a checkpoint every N optimizer steps (and at the end)")
    keep_last: int = _opt(3, "checkpoints to keep (older ones are deleted)")
    resume: bool | str = _opt(False, "True: continue from the newest checkpoint in output_dir; a path: from that "
                                     "checkpoint")
    max_failed_fraction: float = _opt(0.5, "stop when more than this fraction of an epoch's videos cannot be "
                                           "decoded (or every video of the first step): the data is likely wrong")
    compile: bool = _opt(False, "torch.compile the model")
    float8: bool = _opt(False, "FP8 products in the transformer blocks' linear layers (torchao's float8 training, "
                               "row-wise scales; needs torchao, bf16 precision, a GPU with FP8 units, and "
                               "compile; at ViT-B's width it measured 0.67-0.72x the bf16 step on an H200)")
    gradient_checkpointing: bool = _opt(False, "recompute activations in backward (less memory, more time)")

    def validate(self) -> None:
        super().validate()
        positive = ["epochs", "batch_size", "accum_steps", "num_sample", "checkpoint_every"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.per_device_batch_size is not None and self.per_device_batch_size < 1:
            raise ValueError(f"per_device_batch_size must be >= 1, got {self.per_device_batch_size}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.train_crop not in ("multiscale", "random_resized"):
            raise ValueError(f"train_crop must be 'multiscale' or 'random_resized', got {self.train_crop!r}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be in [0, 1), got {self.betas}")
        if self.weight_decay < 0 or self.base_lr <= 0 or (self.lr is not None and self.lr <= 0):
            raise ValueError("weight_decay must be >= 0 and learning rates > 0")
        if not 0.0 <= self.max_failed_fraction <= 1.0:
            raise ValueError(f"max_failed_fraction must be in [0, 1], got {self.max_failed_fraction}")
        if self.warmup_epochs < 0 or (self.warmup_steps is not None and self.warmup_steps < 0):
            raise ValueError("warmup_epochs and warmup_steps must be >= 0")


@dataclass
class PretrainOptions(TrainOptions):
    """Self-supervised pretraining (masked video reconstruction), the paper's recipe."""

    output_dir: str = _opt("runs/pretrain", "folder for checkpoints, metrics.jsonl, options.json and plots")
    mask_type: str = _opt("tube", "'tube' (the same spatial mask on every frame) or 'random'")
    mask_ratio: float = _opt(0.9, "fraction of tokens hidden from the encoder")
    norm_pix_loss: bool | None = _opt(None, "normalise each target patch (default: the model config's, True)")
    decoder_mask_ratio: float = _opt(0.0, "VideoMAE V2 dual masking: fraction of tokens the decoder does not "
                                          "reconstruct, by a running-cell mask (0.25, 0.5 or 0.75; 0: V1, "
                                          "every hidden token)")
    flip: bool = _opt(False, "random horizontal flip (off: the paper's pretraining flips nothing)")

    def validate(self) -> None:
        super().validate()
        if self.decoder_mask_ratio not in (0.0, 0.25, 0.5, 0.75):
            raise ValueError(f"decoder_mask_ratio must be 0 (off), 0.25, 0.5 or 0.75 (1, 2 or 3 of a 2x2 cell's "
                             f"tokens), got {self.decoder_mask_ratio}")
        if self.mask_type not in ("tube", "random"):
            raise ValueError(f"mask_type must be 'tube' or 'random', got {self.mask_type!r}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")


# ------------------------------------------------------------------------------ protocols
PROTOCOLS: dict[str, dict[str, Any]] = {
    # The original Kinetics-400 scripts: 16 frames 4 apart, random flip, 5 clips x 3 crops at test.
    "kinetics": {"sampling": "dense", "sampling_rate": 4, "flip": True, "eval_num_clips": 5, "eval_num_crops": 3},
    # The original SSv2 scripts and loader: one frame from each of 16 segments, no flip (labels such
    # as "left to right" depend on it), 2 temporal views (segment starts, midpoints) x 3 crops at
    # test. sampling_rate 2 is SSv2's dense rate (its pretraining, and classify / embed of the model).
    "ssv2": {"sampling": "segments", "sampling_rate": 2, "flip": False, "eval_num_clips": 2, "eval_num_crops": 3},
}
"""Data protocols of `finetune` and `evaluate`: the options each one sets (those a class has)."""


def with_protocol(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the preset of its `protocol` laid beneath it: the options given in `data`
    win over the preset. Data without a protocol comes back as it is."""
    if "protocol" not in data or "protocol" not in {f.name for f in dataclasses.fields(cls)}:
        return dict(data)
    name = data["protocol"]
    if name not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {tuple(PROTOCOLS)}, got {name!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    return {**{k: v for k, v in PROTOCOLS[name].items() if k in names}, **data}


@dataclass
class EvalViewOptions:
    """Multi-view evaluation: clips along time x crops across the frame."""

    eval_num_clips: int = _opt(5, "clips per video at evaluation, evenly spaced in time (segment sampling: "
                                  "offsets into the segments)")
    eval_num_crops: int = _opt(3, "crops per clip at evaluation, along the long side (1: centre)")
    eval_batch_size: int = _opt(4, "videos per device per evaluation batch (each with clips x crops views)")


@dataclass
class ProtocolOptions(EvalViewOptions):
    """The data protocol: how clips are cut in training and evaluation, from a named preset."""

    protocol: str = _opt("kinetics", "preset of sampling, sampling_rate, flip (fine-tuning), eval_num_clips and "
                                     "eval_num_crops: 'kinetics' (dense 16x4, flip, 5x3 views) or 'ssv2' "
                                     "(16 segments, no flip, 2x3 views); options given explicitly win")
    sampling: str = _opt("dense", "'dense' (num_frames frames sampling_rate apart, Kinetics) or 'segments' (one "
                                  "frame from each of num_frames equal segments, Something-Something)")

    def __post_init__(self) -> None:
        # The constructor cannot tell a default from a value given, so it cannot apply a preset;
        # a protocol whose settings are all still the defaults was never applied: say so.
        if self.protocol not in PROTOCOLS or self.protocol == "kinetics":
            return
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        changed = sorted(k for k, v in PROTOCOLS[self.protocol].items() if k in defaults and v != defaults[k])
        if changed and all(getattr(self, k) == defaults[k] for k in changed):
            name = type(self).__name__
            raise ValueError(f"{name}(protocol={self.protocol!r}) leaves {changed} at their defaults: the "
                             f"constructor does not apply a protocol's preset; build the options with "
                             f"{name}.load(protocol={self.protocol!r}, ...) or {name}().replace(protocol=...)")

    def validate_protocol(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {tuple(PROTOCOLS)}, got {self.protocol!r}")
        from ..sampling import check_sampling

        check_sampling(self.sampling)


@dataclass
class FinetuneOptions(TrainOptions, ProtocolOptions):
    """Supervised fine-tuning for video classification, the paper's recipe."""

    output_dir: str = _opt("runs/finetune", "folder for checkpoints, metrics.jsonl, options.json and plots")
    eval_data: str | None = _opt(None, "validation / test data (folder or list), evaluated at the end")
    eval_every: int = _opt(0, "also evaluate every N epochs (0: only at the end)")
    labels: str | None = _opt(None, "class names, one a line (line i = label i); default: class folder names "
                                    "or the numbers")
    num_labels: int | None = _opt(None, "number of classes (default: from the data)")
    epochs: int = _opt(75, "number of epochs")
    batch_size: int = _opt(384, "global batch in videos per optimizer step")
    num_sample: int = _opt(2, "repeated augmentation: clips drawn from each decoded video")
    base_lr: float = _opt(1e-3, "learning rate per 256 videos; lr = base_lr x batch_size / 256")
    min_lr: float = _opt(1e-6, "final learning rate of the cosine, per 256 videos")
    warmup_epochs: float = _opt(5.0, "epochs of linear warmup")
    betas: tuple[float, float] = _opt((0.9, 0.999), "AdamW betas")
    layer_decay: float = _opt(0.75, "layer-wise lr decay: layer l gets decay ** (L + 1 - l)")
    drop_path: float = _opt(0.1, "stochastic depth rate of the last block (linear over blocks)")
    label_smoothing: float = _opt(0.1, "label smoothing")
    mixup: float = _opt(0.8, "Mixup alpha (0: off)")
    cutmix: float = _opt(1.0, "CutMix alpha (0: off)")
    mixup_prob: float = _opt(1.0, "probability of mixing a batch")
    mixup_switch_prob: float = _opt(0.5, "probability of CutMix rather than Mixup")
    train_crop: str = _opt("random_resized", "'random_resized' (scale 0.08-1, aspect 3/4-4/3) or 'multiscale'")
    rand_augment: str | None = _opt("rand-m7-n4-mstd0.5-inc1", "RandAugment, a timm config string, the same on "
                                    "every frame of a clip (none or '': off)")
    random_erasing: float = _opt(0.25, "probability of erasing one region of a clip (pixel mode, the same region "
                                       "on every frame; 0: off)")
    head_init_scale: float = _opt(0.001, "scale of a newly initialised classifier's weight and bias "
                                         "(a loaded classifier is kept as it is)")

    def validate(self) -> None:
        super().validate()
        self.validate_protocol()
        if self.rand_augment:
            from ..data.augment import parse_rand_augment

            parse_rand_augment(self.rand_augment)  # a bad string fails here, not in a worker
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ValueError(f"random_erasing is a probability in [0, 1], got {self.random_erasing}")
        if self.head_init_scale <= 0:
            raise ValueError(f"head_init_scale must be > 0, got {self.head_init_scale}")
        if not 0.0 < self.layer_decay <= 1.0:
            raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay}")
        if not 0.0 <= self.drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {self.drop_path}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.eval_every < 0 or self.eval_num_clips < 1 or self.eval_num_crops < 1 or self.eval_batch_size < 1:
            raise ValueError("eval_every must be >= 0; eval_num_clips, eval_num_crops, eval_batch_size >= 1")


@dataclass
class EvalOptions(ClipOptions, ProtocolOptions):
    """Multi-view evaluation of a fine-tuned classifier: top-1 / top-5 and a per-class report."""

    model: str = _opt("", "the fine-tuned model: a folder, a hub id or an original .pth checkpoint")
    output_dir: str = _opt("runs/eval", "folder for metrics.json, per_class.json and the confusion matrix")
    labels: str | None = _opt(None, "class names, one a line (default: the model config's id2label)")
    short_side: int | None = _opt(None, "decode frames resized to this short side (default: image_size)")

    def validate(self) -> None:
        super().validate()
        if not self.model:
            raise ValueError("EvalOptions.model is required: the folder or checkpoint to evaluate")
        self.validate_protocol()
        if self.eval_num_clips < 1 or self.eval_num_crops < 1 or self.eval_batch_size < 1:
            raise ValueError("eval_num_clips, eval_num_crops and eval_batch_size must be >= 1")


# ------------------------------------------------------------------------------ coercion
def _coerce(name: str, kind: Any, value: Any) -> Any:
    """JSON value -> the field's type (lists to tuples, ints to floats); TypeError otherwise."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(name, option, value)
            except TypeError as err:
                errors.append(str(err))
        raise TypeError(f"option {name!r}: {value!r} is not {_describe(kind)}")
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise TypeError(f"option {name!r}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(name, a, v) for a, v in zip(args, value))
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise TypeError(f"option {name!r}: expected a mapping, got {value!r}")
        return dict(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"option {name!r}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"option {name!r}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"option {name!r}: expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"option {name!r}: expected a string, got {value!r}")
        return os.fspath(value)
    return value


def _describe(kind: Any) -> str:
    return " or ".join("None" if a is type(None) else getattr(a, "__name__", str(a)) for a in typing.get_args(kind))


__all__ = ["BaseOptions", "ClipOptions", "TrainOptions", "PretrainOptions", "FinetuneOptions", "EvalOptions",
           "PROTOCOLS", "with_protocol"]
