"""`VideoMAEConfig`: the model's hyper-parameters, read from and written to `config.json`.

The field names and defaults are the transformers ones, so the same `config.json` works in
both libraries. transformers 4.x writes `qkv_bias`, 5.x writes `qv_bias`; both are read, and
both are written so that either version reads our files.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

CONFIG_NAME = "config.json"

# Keys transformers writes that carry no meaning for this library; kept so a round trip
# through our `save_pretrained` does not drop them.
_PASSTHROUGH_KEYS = {
    "transformers_version",
    "_name_or_path",
}
# The 4.x names of fields: read, and written beside the 5.x name.
_ALIASES = {"torch_dtype": "dtype", "_attn_implementation": "attn_implementation"}
_ATTN_IMPLEMENTATIONS = {None, "eager", "sdpa"}

# The published model sizes. Decoder sizes follow the released pretraining checkpoints.
PRESETS: dict[str, dict[str, Any]] = {
    "small": dict(
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
        decoder_hidden_size=192, decoder_num_hidden_layers=12, decoder_num_attention_heads=3,
        decoder_intermediate_size=768,
    ),
    "base": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        decoder_hidden_size=384, decoder_num_hidden_layers=4, decoder_num_attention_heads=6,
        decoder_intermediate_size=1536,
    ),
    "large": dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        decoder_hidden_size=512, decoder_num_hidden_layers=12, decoder_num_attention_heads=8,
        decoder_intermediate_size=2048,
    ),
    "huge": dict(
        hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, intermediate_size=5120,
        decoder_hidden_size=640, decoder_num_hidden_layers=12, decoder_num_attention_heads=8,
        decoder_intermediate_size=2560,
    ),
    # VideoMAE V2's ViT-g (OpenGVLab/VideoMAEv2 vit_giant_patch14_224: mlp_ratio 48/11, so
    # int(1408 * 48 / 11) = 6144 and int(512 * 48 / 11) = 2234; decoder depth 4, its recipe's).
    "giant": dict(
        patch_size=14, hidden_size=1408, num_hidden_layers=40, num_attention_heads=16, intermediate_size=6144,
        decoder_hidden_size=512, decoder_num_hidden_layers=4, decoder_num_attention_heads=8,
        decoder_intermediate_size=2234,
    ),
}

_ACTIVATIONS = {"gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "relu", "silu", "swish"}
_PROBLEM_TYPES = {None, "regression", "single_label_classification", "multi_label_classification"}


def _to_dtype(value: Any) -> Any:
    """None, or a torch.dtype from one or from its name ("float16", "torch.float16")."""
    if value is None or value == "auto":
        return None if value is None else "auto"
    import torch

    if isinstance(value, torch.dtype):
        return value
    dtype = getattr(torch, str(value).removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"VideoMAEConfig.dtype {value!r} is not a torch dtype (e.g. 'float32', 'bfloat16')")
    return dtype


def _pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def read_json_object(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in `path` (config.json, preprocessor_config.json); a ValueError naming the
    file when it is not valid JSON or not an object."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


@dataclass
class VideoMAEConfig:
    """Hyper-parameters of a VideoMAE model (transformers' names and defaults).

    Beyond transformers: `drop_path_rate` (stochastic depth, off by default). transformers
    keeps unknown keys as attributes, so our config.json still loads there.
    """

    image_size: int | tuple[int, int] = 224
    patch_size: int = 16
    num_channels: int = 3
    num_frames: int = 16
    tubelet_size: int = 2
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    qkv_bias: bool = True
    use_mean_pooling: bool = True
    decoder_num_attention_heads: int = 6
    decoder_hidden_size: int = 384
    decoder_num_hidden_layers: int = 4
    decoder_intermediate_size: int = 1536
    norm_pix_loss: bool = True
    num_labels: int | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    problem_type: str | None = None
    drop_path_rate: float = 0.0
    # Position table (beyond transformers, which ignores these keys): learned (as some original
    # checkpoints ship) or the fixed sin-cos table; and the (T, H, W) token grid it was made for
    # when that is not this config's grid (set by a grid change on load): it is then resized in 3-D.
    use_learnable_pos_emb: bool = False
    position_grid: tuple[int, int, int] | None = None
    # Arguments every transformers config takes (PreTrainedConfig's), with its defaults: the
    # models read the first three as the defaults of the same forward arguments.
    return_dict: bool = True
    output_attentions: bool = False
    output_hidden_states: bool = False
    dtype: Any = None  # a torch.dtype (given as one or as its name, "float16"); `torch_dtype` in 4.x
    architectures: list[str] | None = None
    is_decoder: bool = False
    is_encoder_decoder: bool = False
    chunk_size_feed_forward: int = 0
    attn_implementation: str | None = None  # "eager" or "sdpa": both compute the same function here
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    sub_configs: ClassVar[dict[str, type]] = {}

    def __post_init__(self) -> None:
        if isinstance(self.image_size, list):
            self.image_size = tuple(self.image_size)
        if isinstance(self.position_grid, list):
            self.position_grid = tuple(self.position_grid)
        self.dtype = _to_dtype(self.dtype)
        self._check_types()
        self._resolve_labels()
        self.validate()
        object.__setattr__(self, "_ready", True)

    def __setattr__(self, name: str, value: Any) -> None:
        """Setting `num_labels` resizes `id2label` / `label2id` to generic names, as transformers does."""
        super().__setattr__(name, value)
        if name == "num_labels" and self.__dict__.get("_ready") and value is not None \
                and len(self.id2label or {}) != value:
            super().__setattr__("id2label", {i: f"LABEL_{i}" for i in range(value)})
            super().__setattr__("label2id", {f"LABEL_{i}": i for i in range(value)})

    @property
    def _attn_implementation(self) -> str:
        """What transformers' code reads; "sdpa" runs scaled_dot_product_attention (and the explicit
        softmax when attention maps are asked for), "eager" always the explicit softmax (for export)."""
        return self.attn_implementation or "sdpa"

    @_attn_implementation.setter
    def _attn_implementation(self, value: str | None) -> None:
        self.attn_implementation = value
        self._check_types()

    @property
    def torch_dtype(self) -> Any:
        """transformers 4.x name of `dtype`."""
        return self.dtype

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict

    def get_text_config(self, *args: Any, **kwargs: Any) -> VideoMAEConfig:
        """No sub-configs: the config itself, as transformers answers for a single-modality model."""
        return self

    # ----------------------------------------------------------------------------- checks
    def _check_types(self) -> None:
        ints = ["patch_size", "num_channels", "num_frames", "tubelet_size", "hidden_size",
                "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "decoder_num_attention_heads", "decoder_hidden_size", "decoder_num_hidden_layers",
                "decoder_intermediate_size"]
        floats = ["hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range",
                  "layer_norm_eps", "drop_path_rate"]
        bools = ["qkv_bias", "use_mean_pooling", "norm_pix_loss", "use_learnable_pos_emb"]
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"VideoMAEConfig.{name} must be an int, got {value!r}")
        for name in floats:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"VideoMAEConfig.{name} must be a number, got {value!r}")
        for name in bools:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"VideoMAEConfig.{name} must be true or false, got {getattr(self, name)!r}")
        size = self.image_size
        ok = isinstance(size, int) and not isinstance(size, bool)
        ok = ok or (isinstance(size, tuple) and len(size) == 2 and all(isinstance(s, int) for s in size))
        if not ok:
            raise ValueError(f"VideoMAEConfig.image_size must be an int or [height, width], got {size!r}")
        grid = self.position_grid
        if grid is not None and not (isinstance(grid, tuple) and len(grid) == 3 and all(
                isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid)):
            raise ValueError(f"VideoMAEConfig.position_grid must be None or [frames, height, width] token counts, "
                             f"got {grid!r}")
        if not isinstance(self.hidden_act, str) or self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"VideoMAEConfig.hidden_act {self.hidden_act!r} is not one of {sorted(_ACTIVATIONS)}")
        labels = self.num_labels
        if labels is not None and (isinstance(labels, bool) or not isinstance(labels, int) or labels < 0):
            raise ValueError(f"VideoMAEConfig.num_labels must be a non-negative int, got {labels!r}")
        for name in ("id2label", "label2id"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), dict):
                raise ValueError(f"VideoMAEConfig.{name} must be a mapping, got {type(getattr(self, name)).__name__}")
        for name in ("return_dict", "output_attentions", "output_hidden_states", "is_decoder", "is_encoder_decoder"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"VideoMAEConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if self.attn_implementation not in _ATTN_IMPLEMENTATIONS:
            raise ValueError(f"VideoMAEConfig.attn_implementation {self.attn_implementation!r} is not supported: "
                             "this library has 'sdpa' (the default) and 'eager'")
        if self.problem_type not in _PROBLEM_TYPES:
            raise ValueError(f"VideoMAEConfig.problem_type {self.problem_type!r} is not one of "
                             f"{sorted(p for p in _PROBLEM_TYPES if p)}")

    def _resolve_labels(self) -> None:
        if self.id2label is not None:
            try:
                id2label = {int(k): str(v) for k, v in self.id2label.items()}
            except (TypeError, ValueError):
                raise ValueError(f"VideoMAEConfig.id2label keys must be class indices (integers), got "
                                 f"{list(self.id2label)[:5]}") from None
            if self.num_labels is not None and self.num_labels != len(id2label):
                raise ValueError(f"VideoMAEConfig: num_labels={self.num_labels} but id2label has "
                                 f"{len(id2label)} entries")
            self.id2label = dict(sorted(id2label.items()))
        else:
            n = 2 if self.num_labels is None else self.num_labels
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
        self.num_labels = len(self.id2label)
        if self.label2id is None or len(self.label2id) != self.num_labels:
            self.label2id = {v: k for k, v in self.id2label.items()}
        else:
            self.label2id = dict(self.label2id)  # kept as given, as transformers keeps it

    def validate(self) -> None:
        """Raise ValueError naming the field when the sizes cannot form a model. Like transformers,
        a hidden size that the heads do not divide is accepted here and refused by the model
        (`check_heads`): a config may be built first and its sizes set afterwards."""
        height, width = self.image_hw
        sizes = {"image_size height": height, "image_size width": width, "num_frames": self.num_frames,
                 "hidden_size": self.hidden_size, "num_attention_heads": self.num_attention_heads,
                 "intermediate_size": self.intermediate_size, "decoder_hidden_size": self.decoder_hidden_size,
                 "decoder_num_attention_heads": self.decoder_num_attention_heads,
                 "decoder_intermediate_size": self.decoder_intermediate_size}
        for name, value in sizes.items():
            if value <= 0:
                raise ValueError(f"VideoMAEConfig: {name} must be positive, got {value}")
        for name in ("num_hidden_layers", "decoder_num_hidden_layers"):
            if getattr(self, name) < 0:
                raise ValueError(f"VideoMAEConfig: {name} must be >= 0, got {getattr(self, name)}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"VideoMAEConfig: {name} must be in [0, 1], got {getattr(self, name)}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"VideoMAEConfig: layer_norm_eps must be positive, got {self.layer_norm_eps}")
        if not self.initializer_range >= 0:
            raise ValueError(f"VideoMAEConfig: initializer_range must be >= 0, got {self.initializer_range}")
        if self.patch_size <= 0 or height % self.patch_size or width % self.patch_size:
            raise ValueError(f"VideoMAEConfig: image_size {height}x{width} is not divisible by "
                             f"patch_size {self.patch_size}")
        if self.tubelet_size <= 0 or self.num_frames % self.tubelet_size:
            raise ValueError(f"VideoMAEConfig: num_frames {self.num_frames} is not divisible by "
                             f"tubelet_size {self.tubelet_size}")
        if self.num_channels <= 0:
            raise ValueError(f"VideoMAEConfig: num_channels must be positive, got {self.num_channels}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"VideoMAEConfig: drop_path_rate must be in [0, 1), got {self.drop_path_rate}")

    def check_heads(self) -> None:
        """Raise ValueError when the heads do not divide the width (checked when a model is built)."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"VideoMAEConfig: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.decoder_hidden_size % self.decoder_num_attention_heads:
            raise ValueError(f"VideoMAEConfig: decoder_hidden_size {self.decoder_hidden_size} is not a "
                             f"multiple of decoder_num_attention_heads {self.decoder_num_attention_heads}")

    # ----------------------------------------------------------------------------- sizes
    @property
    def model_type(self) -> str:
        return "videomae"

    @property
    def qv_bias(self) -> bool:
        """transformers 5.x name of `qkv_bias`."""
        return self.qkv_bias

    @property
    def image_hw(self) -> tuple[int, int]:
        return _pair(self.image_size)

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Tokens along (time, height, width)."""
        height, width = self.image_hw
        return self.num_frames // self.tubelet_size, height // self.patch_size, width // self.patch_size

    @property
    def trained_grid(self) -> tuple[int, int, int]:
        """The (time, height, width) grid the position table was made for (`position_grid`, or
        this config's grid)."""
        return self.position_grid if self.position_grid is not None else self.grid_size

    @property
    def num_patches(self) -> int:
        t, h, w = self.grid_size
        return t * h * w

    @property
    def patch_dim(self) -> int:
        """Pixels in one tubelet: tubelet * patch * patch * channels."""
        return self.tubelet_size * self.patch_size * self.patch_size * self.num_channels

    # ----------------------------------------------------------------------------- io
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> VideoMAEConfig:
        """A config for a published size ('small', 'base', 'large', 'huge', 'giant')."""
        if name not in PRESETS:
            raise ValueError(f"unknown VideoMAE preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> VideoMAEConfig:
        """Build from a config.json dict; unknown keys are kept in `extra`, typos in
        `overrides` are errors."""
        data = dict(data)
        model_type = data.pop("model_type", "videomae")
        if model_type != "videomae":
            raise ValueError(f"config has model_type {model_type!r}, expected 'videomae'")
        if "qv_bias" in data:
            qv = data.pop("qv_bias")
            data.setdefault("qkv_bias", qv)
        for old, new in _ALIASES.items():
            if old in data:
                value = data.pop(old)
                data.setdefault(new, value)
        overrides = dict(overrides)
        for old, new in _ALIASES.items():
            if old in overrides:
                overrides[new] = overrides.pop(old)
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        for key in overrides:
            if key not in names:
                raise TypeError(f"VideoMAEConfig has no field {key!r}")
        known.update(overrides)
        if "num_labels" in overrides and "id2label" not in overrides:
            known.pop("id2label", None)
            known.pop("label2id", None)
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The config.json content: transformers' keys, ours beside them."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("extra", "attn_implementation"):  # a runtime choice, not saved (nor by transformers)
                continue
            value = getattr(self, f.name)
            if f.name == "image_size" and isinstance(value, tuple):
                value = list(value)
            if f.name == "id2label":
                value = {str(k): v for k, v in value.items()}
            if f.name == "dtype" and value is not None:
                value = str(value).removeprefix("torch.")
            out[f.name] = copy.deepcopy(value)
        out["qv_bias"] = self.qkv_bias
        out["torch_dtype"] = out["dtype"]  # what transformers 4.x reads
        out["model_type"] = "videomae"
        for key, value in self.extra.items():
            if key in _PASSTHROUGH_KEYS or key not in out:
                out.setdefault(key, value)
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike) -> None:
        Path(json_file_path).write_text(self.to_json_string())

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        path = Path(save_directory)
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path}: expected a directory to save config.json in, found a file")
        path.mkdir(parents=True, exist_ok=True)
        target = path / CONFIG_NAME
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(self.to_json_string())
        os.replace(tmp, target)
        return target

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> VideoMAEConfig:
        path = Path(path)
        data = read_json_object(path)
        try:
            return cls.from_dict(data, **overrides)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, subfolder: str = "", **kwargs: Any) -> VideoMAEConfig:
        """Read config.json from a folder (or its `subfolder`), a file, or a hub repo id."""
        from .hub import resolve_file

        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k not in _HUB_ARGS}
        if Path(name_or_path).is_file():
            return cls.from_json_file(name_or_path, **overrides)
        filename = f"{subfolder.strip('/')}/{CONFIG_NAME}" if subfolder else CONFIG_NAME
        path = resolve_file(name_or_path, filename, **kwargs)
        return cls.from_json_file(path, **overrides)

    def copy(self, **overrides: Any) -> VideoMAEConfig:
        return VideoMAEConfig.from_dict(self.to_dict(), **overrides)


_HUB_ARGS = {"revision", "cache_dir", "token", "local_files_only"}
_fields_init = VideoMAEConfig.__init__


def _init(self: VideoMAEConfig, *args: Any, **kwargs: Any) -> None:
    """The dataclass's __init__, also taking the 4.x names `torch_dtype` and
    `_attn_implementation`. Unknown names are a TypeError (a typo is not silently kept)."""
    for old, new in _ALIASES.items():
        if old in kwargs:
            value = kwargs.pop(old)
            kwargs.setdefault(new, value)
    _fields_init(self, *args, **kwargs)


_init.__signature__ = inspect.signature(_fields_init)  # type: ignore[attr-defined]
VideoMAEConfig.__init__ = _init  # type: ignore[method-assign]
