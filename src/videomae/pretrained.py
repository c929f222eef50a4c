"""`from_pretrained` / `save_pretrained` shared by every model class."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import save_file
from torch import nn

from . import checkpoint
from .config import CONFIG_NAME, VideoMAEConfig
from .hub import resolve_file
from .initialization import init_weights

logger = logging.getLogger(__name__)
M = TypeVar("M", bound="PreTrainedVideoMAE")
_INTERNAL_NAMES: ContextVar[bool] = ContextVar("videomae_internal_names", default=False)


def _override(config: VideoMAEConfig, overrides: dict[str, Any]) -> VideoMAEConfig:
    """The config with `overrides` applied. When they change the token grid (`num_frames=8`,
    `image_size=320`), `position_grid` keeps the grid the weights' position table was made for,
    so the model resizes it in 3-D rather than rebuilding a flat table."""
    if not overrides:
        return config
    new = config.copy(**overrides)
    if "position_grid" not in overrides and new.grid_size != config.grid_size:
        new.position_grid = config.trained_grid
    return new


def _is_bare_key(key: str) -> bool:
    """A key of a bare encoder (no `videomae.` prefix), in any layout."""
    return key.startswith(("embeddings.", "encoder.layer.", "layernorm.", "patch_embed.", "blocks.", "norm."))
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
_DECODER_KEYS = ("decoder.", "encoder_to_decoder.", "mask_token")  # internal names of the pretraining decoder


def _parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    text = size.strip().upper()
    for unit, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


class PreTrainedVideoMAE(nn.Module):
    """Base of the model classes: config, initialisation, loading and saving."""

    # The public class attributes transformers' models have and tools (Trainer, PEFT) read.
    config_class = VideoMAEConfig
    base_model_prefix = "videomae"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True

    @classmethod
    def can_generate(cls) -> bool:
        """No text generation (what transformers' Trainer and pipelines ask)."""
        return False

    def enable_input_require_grads(self) -> None:
        """Make the patch embedding's output require grad, so that gradient checkpointing works
        with frozen embeddings (PEFT / LoRA calls this)."""
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            output.requires_grad_(True)

        self._require_grads_hook = self.get_input_embeddings().register_forward_hook(hook)

    def disable_input_require_grads(self) -> None:
        handle = self.__dict__.pop("_require_grads_hook", None)
        if handle is not None:
            handle.remove()

    def __init__(self, config: VideoMAEConfig) -> None:
        super().__init__()
        if not isinstance(config, VideoMAEConfig):
            raise ValueError(f"{type(self).__name__} needs a VideoMAEConfig, got {type(config).__name__}")
        config.check_heads()
        self.config = config
        self.gradient_checkpointing: bool | dict = False

    def output_options(
        self, output_attentions: bool | None, output_hidden_states: bool | None, return_dict: bool | None
    ) -> tuple[bool, bool, bool]:
        """The forward arguments, None meaning the config's value (as in transformers)."""
        c = self.config
        return (c.output_attentions if output_attentions is None else bool(output_attentions),
                c.output_hidden_states if output_hidden_states is None else bool(output_hidden_states),
                c.return_dict if return_dict is None else bool(return_dict))

    def get_input_embeddings(self) -> nn.Module:
        """The patch (tubelet) embedding: what transformers returns for vision models."""
        return getattr(self, "videomae", self).patch_embed

    def get_output_embeddings(self) -> None:
        return None

    # ------------------------------------------------------------- adapters (PEFT / LoRA)
    def unfuse_qkv(self) -> PreTrainedVideoMAE:
        """Give every attention layer separate `query` / `key` / `value` Linears (transformers'
        names) in place of the fused projection, so that PEFT can put LoRA on them:
        `get_peft_model(model.unfuse_qkv(), LoraConfig(target_modules=["query", "value"]))`.
        Same outputs; slightly slower (three matrix products). Returns self."""
        for module in self.modules():
            if hasattr(module, "unfuse") and hasattr(module, "qkv"):
                module.unfuse()
        return self

    def fuse_qkv(self) -> PreTrainedVideoMAE:
        """Back to one fused projection per layer (after `merge_and_unload()`). Returns self."""
        for module in self.modules():
            if hasattr(module, "fuse") and hasattr(module, "qkv"):
                module.fuse()
        return self

    def post_init(self, skip_init: bool = False) -> None:
        """Initialise every weight, last thing in a model's constructor. `skip_init`: the model
        is built to have a checkpoint loaded into it (from_pretrained), which makes the pass
        wasted work; what the checkpoint lacks is initialised when it is loaded."""
        if not skip_init:
            init_weights(self, self.config)
        # transformers' legacy switch: `gradient_checkpointing: true` in a config turns it on
        if getattr(self.config, "gradient_checkpointing", False) or self.config.extra.get("gradient_checkpointing"):
            self.gradient_checkpointing_enable()

    # ----------------------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    # --------------------------------------------------------------- optimizer questions
    # The model says which parameters decay and how deep each one is (as timm's
    # `no_weight_decay` / `group_matcher` do), from its modules, not from parameter names: a
    # bare encoder's names lack the `videomae.` prefix that the other classes' have.
    def no_weight_decay(self) -> set[str]:
        """Parameters without weight decay: biases, norms and q/v biases (every parameter
        of fewer than two dimensions) and the mask token, as the original recipe does."""
        return {name for name, param in self.named_parameters()
                if param.ndim <= 1 or name == "mask_token" or name.endswith("pos_embed")}

    def layer_ids(self) -> dict[str, int]:
        """Depth of every parameter for layer-wise lr decay: the patch embedding and the mask
        token are layer 0, encoder block i is layer i + 1, everything after the encoder blocks
        (final norm, fc_norm, classifier, decoder) is layer num_hidden_layers + 1."""
        encoder = getattr(self, "videomae", self)
        depth = {id(p): 0 for p in encoder.patch_embed.parameters()}
        for i, block in enumerate(encoder.blocks):
            depth.update({id(p): i + 1 for p in block.parameters()})
        if isinstance(getattr(self, "mask_token", None), nn.Parameter):
            depth[id(self.mask_token)] = 0
        if isinstance(getattr(encoder, "pos_embed", None), nn.Parameter):
            depth[id(encoder.pos_embed)] = 0
        after = len(encoder.blocks) + 1
        return {name: depth.get(id(param), after) for name, param in self.named_parameters()}

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict[str, Any] | None = None,
                                      activation_checkpointing_kwargs: dict[str, Any] | None = None) -> None:
        """Recompute block activations in the backward pass: less memory, about 30% more time.
        `gradient_checkpointing_kwargs` (5.x: `activation_checkpointing_kwargs`) go to
        torch.utils.checkpoint (e.g. {"use_reentrant": True}); non-reentrant by default."""
        kwargs = gradient_checkpointing_kwargs or activation_checkpointing_kwargs
        value: bool | dict = dict(kwargs) if kwargs else True
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = value

    def gradient_checkpointing_disable(self) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) is not False for m in self.modules())

    # transformers 5.x's names of the same switches
    activation_checkpointing_enable = gradient_checkpointing_enable
    activation_checkpointing_disable = gradient_checkpointing_disable
    is_activation_checkpointing = is_gradient_checkpointing

    def compile_blocks(self, **compile_kwargs: Any) -> PreTrainedVideoMAE:
        """torch.compile each transformer block in place (regional compilation): the blocks
        hold nearly all the work, compile once (they share code and shapes), and the Python
        around them (mask checks, gathers) stays eager. The blocks are the members of the
        models' `nn.ModuleList`s (encoder and decoder `blocks`). Returns self."""
        for module in self.modules():
            if isinstance(module, nn.ModuleList):
                for block in module:
                    block.compile(**compile_kwargs)
        return self

    @property
    def _prefix(self) -> str:
        """What our keys lack compared with the internal layout (a bare encoder lacks `videomae.`)."""
        return "" if hasattr(self, "videomae") else "videomae."

    def internal_state_dict(self, keep_vars: bool = False) -> dict[str, torch.Tensor]:
        """Weights under the internal names (fused qkv, timm-style blocks, encoder under `videomae.`)."""
        token = _INTERNAL_NAMES.set(True)
        try:
            return {self._prefix + k: v for k, v in super().state_dict(keep_vars=keep_vars).items()}
        finally:
            _INTERNAL_NAMES.reset(token)

    # The public state dict speaks transformers' names, so that `model.load_state_dict(hf_state_dict)`
    # and the reverse work; the fused projection is split and joined here, at the boundary.
    def state_dict(self, *, destination: dict | None = None, prefix: str = "", keep_vars: bool = False) -> dict:
        """Weights under transformers 5.x's names (`query.bias` / `value.bias`; `load_state_dict`
        also takes 4.x's `q_bias` / `v_bias`). `internal_state_dict()` gives this library's own names."""
        if _INTERNAL_NAMES.get():
            return super().state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)
        names = checkpoint.to_transformers(self.internal_state_dict(keep_vars), with_prefix=self._prefix == "",
                                           version=5)
        destination = OrderedDict() if destination is None else destination
        for key, value in names.items():
            destination[prefix + key] = value
        return destination

    def load_state_dict(self, state_dict: dict[str, torch.Tensor], strict: bool = True, assign: bool = False):
        """Load weights under transformers' (4.x or 5.x), internal or original names."""
        state = self._own_names(state_dict)
        return super().load_state_dict(state, strict=strict, assign=assign)

    def _own_names(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Any supported layout -> the names of this module's own parameters."""
        internal, _ = checkpoint.to_internal({("videomae." + k if self._prefix and _is_bare_key(k) else k): v
                                              for k, v in state.items()}, strict=False)
        if any(getattr(m, "qkv", 0) is None for m in self.modules()):  # unfused for adapters
            internal = checkpoint.unfuse_qkv(internal)
        if self._prefix:
            return {k[len(self._prefix):] if k.startswith(self._prefix) else k: v for k, v in internal.items()}
        return internal

    # ----------------------------------------------------------------------------- saving
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        safe_serialization: bool = True,
        max_shard_size: int | str | None = None,
    ) -> Path:
        """Write config.json and the weights in transformers' layout, atomically."""
        if getattr(self, "float8", None) is not None:
            raise ValueError(f"this model's linear layers are FP8 ({self.float8}; videomae.fp8): its weights are not "
                             "transformers' layout. Save the model before quantising it, and quantise after loading "
                             "(from_pretrained(..., dtype='float8'))")
        folder = Path(save_directory)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{folder}: expected a directory to save the model in, found a file")
        folder.mkdir(parents=True, exist_ok=True)
        state = checkpoint.to_transformers(self.internal_state_dict(), with_prefix=bool(self._prefix == ""))
        state = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
        config = self.config.copy()
        config.architectures = [type(self).__name__]
        for stale in checkpoint.WEIGHT_NAMES:
            (folder / stale).unlink(missing_ok=True)
        shards = self._shards(state, _parse_size(max_shard_size) if max_shard_size else None)
        ext = "safetensors" if safe_serialization else "bin"
        stem = "model" if safe_serialization else "pytorch_model"
        names = [f"{stem}.{ext}"] if len(shards) == 1 else \
            [f"{stem}-{i + 1:05d}-of-{len(shards):05d}.{ext}" for i in range(len(shards))]
        for name, shard in zip(names, shards):
            tmp = folder / (name + ".tmp")
            if safe_serialization:
                save_file(shard, str(tmp), metadata={"format": "pt"})
            else:
                torch.save(shard, tmp)
            os.replace(tmp, folder / name)
        if len(shards) > 1:
            import json

            total = sum(v.numel() * v.element_size() for v in state.values())
            index = {"metadata": {"total_size": total},
                     "weight_map": {k: n for n, shard in zip(names, shards) for k in shard}}
            (folder / f"{stem}.{ext}.index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
        config.save_pretrained(folder)
        return folder

    @staticmethod
    def _shards(state: dict[str, torch.Tensor], limit: int | None) -> list[dict[str, torch.Tensor]]:
        if limit is None:
            return [state]
        shards: list[dict[str, torch.Tensor]] = [{}]
        size = 0
        for key, value in state.items():
            nbytes = value.numel() * value.element_size()
            if shards[-1] and size + nbytes > limit:
                shards.append({})
                size = 0
            shards[-1][key] = value
            size += nbytes
        return shards

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls: type[M],
        pretrained_model_name_or_path: str | os.PathLike | None,
        *,
        config: VideoMAEConfig | None = None,
        state_dict: dict[str, torch.Tensor] | None = None,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        dtype: torch.dtype | str | None = None,
        torch_dtype: torch.dtype | str | None = None,
        attn_implementation: str | None = None,
        subfolder: str = "",
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        **config_overrides: Any,
    ) -> M | tuple[M, dict[str, Any]]:
        """Load from a folder (config.json + safetensors or .bin, sharded or not; or its
        `subfolder`), a hub repo id, or a single weights file (an original `.pth` checkpoint
        infers its config). `from_pretrained(None, config=..., state_dict=...)` builds from
        weights in memory.

        Config fields can be overridden by keyword (`num_labels=10`); a new head size needs
        `ignore_mismatched_sizes=True`. `dtype` (`torch_dtype` in transformers 4.x) casts the
        weights; "auto" keeps the checkpoint's; "float8" loads for FP8 inference (the linear layers
        of the transformer blocks in e4m3, the rest in bf16; `videomae.fp8`). With
        `output_loading_info=True` the second value is transformers' dict: sets of `missing_keys`
        and `unexpected_keys`, `mismatched_keys` and `error_msgs`, under transformers' key names.
        """
        if torch_dtype is not None and dtype is not None and torch_dtype != dtype:
            raise ValueError(f"from_pretrained: dtype={dtype!r} and torch_dtype={torch_dtype!r} disagree; pass dtype")
        dtype = dtype if dtype is not None else torch_dtype
        if attn_implementation is not None:
            config_overrides["attn_implementation"] = attn_implementation
        if pretrained_model_name_or_path is None:
            if config is None or state_dict is None:
                raise ValueError("from_pretrained(None, ...) needs both config= and state_dict=")
            config = _override(config, config_overrides)
            state, _ = checkpoint.to_internal(state_dict, strict=False)
            return cls._finish(config, state, "state_dict", ignore_mismatched_sizes, dtype, output_loading_info)
        if subfolder:
            pretrained_model_name_or_path = f"{os.fspath(pretrained_model_name_or_path).rstrip('/')}/{subfolder}"
        source = Path(pretrained_model_name_or_path)
        name = os.fspath(pretrained_model_name_or_path)
        hub = dict(revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only)
        if source.is_file():
            weights_path = source
            sibling = source.parent / CONFIG_NAME
            config_path = sibling if sibling.is_file() else None
        elif source.is_dir():
            weights_path = checkpoint.find_weights(source)
            config_path = resolve_file(source, CONFIG_NAME, required=config is None)
        elif name.endswith(_WEIGHT_SUFFIXES):
            raise FileNotFoundError(f"{name}: no such checkpoint file")
        else:
            config_path = resolve_file(name, CONFIG_NAME, required=config is None, **hub)
            weights_path = None
            for weights_name in checkpoint.WEIGHT_NAMES:
                weights_path = resolve_file(name, weights_name, required=False, **hub)
                if weights_path is not None:
                    break
            if weights_path is None:
                raise FileNotFoundError(f"hub repo {name!r} has none of {', '.join(checkpoint.WEIGHT_NAMES)}")
        fetch = None
        if not source.exists():  # a hub repo: shards named by an index are downloaded one by one
            def fetch(shard: str) -> Path | None:
                return resolve_file(name, shard, **hub)
        raw = checkpoint.read_weights(weights_path, fetch) if state_dict is None else state_dict
        state, layout = checkpoint.to_internal(raw, strict=False)

        if config is not None:
            config = _override(config, config_overrides)
        elif config_path is not None:
            config = _override(VideoMAEConfig.from_json_file(config_path), config_overrides)
        elif layout in ("original", "internal"):
            # The sizes of a fixed table's grid are not in the weights (the defaults are a guess): an
            # override sets them. A learned table's rows do give its grid.
            inferred = VideoMAEConfig.from_dict(checkpoint.infer_config_fields(state))
            config = _override(inferred, config_overrides) if inferred.use_learnable_pos_emb else \
                VideoMAEConfig.from_dict(checkpoint.infer_config_fields(state), **config_overrides)
        elif layout == "unknown":
            raise ValueError(f"{weights_path}: no config.json beside it and no VideoMAE weights to infer one from "
                             "(keys " + ", ".join(list(state)[:5]) + "); pass config=VideoMAEConfig(...)")
        else:
            raise FileNotFoundError(f"{weights_path}: no config.json beside it; pass config=VideoMAEConfig(...)")
        return cls._finish(config, state, str(weights_path), ignore_mismatched_sizes, dtype, output_loading_info)

    @classmethod
    def _finish(cls: type[M], config: VideoMAEConfig, state: dict[str, torch.Tensor], source: str,
                ignore_mismatched_sizes: bool, dtype: torch.dtype | str | None,
                output_loading_info: bool) -> M | tuple[M, dict[str, Any]]:
        """Build the model, load the internal-layout weights, cast, and report."""
        if torch.empty(0).is_meta:  # copying into meta tensors is a silent no-op
            raise RuntimeError("You are using `from_pretrained` with a meta device context manager "
                               "(torch.device('meta')): the weights would not be loaded. Build the model under "
                               "it instead (cls(config)), or call from_pretrained outside it.")
        model = cls(config, skip_init=True)
        info = model.load_internal_state_dict(state, ignore_mismatched_sizes, source)
        if dtype in ("float8", "fp8"):  # FP8 linear layers for inference, bf16 elsewhere (videomae.fp8)
            from .fp8 import quantize_float8

            model = quantize_float8(model)
            model.config.dtype = torch.bfloat16
        elif dtype is not None and dtype != "auto":
            dtype = getattr(torch, dtype.removeprefix("torch.")) if isinstance(dtype, str) else dtype
            model = model.to(dtype)
            model.config.dtype = dtype
        model.eval()
        return (model, info) if output_loading_info else model

    def load_internal_state_dict(
        self, state: dict[str, torch.Tensor], ignore_mismatched_sizes: bool = False, source: str = "checkpoint"
    ) -> dict[str, list]:
        """Load internal-layout weights; initialise what is missing and say so by name."""
        own = self.internal_state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        mismatched = [(k, tuple(state[k].shape), tuple(own[k].shape))
                      for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
        if mismatched and not ignore_mismatched_sizes:
            lines = "; ".join(f"{k}: checkpoint {a}, model {b}" for k, a, b in mismatched)
            raise ValueError(f"{source}: weight shapes differ from the model's ({lines}). To re-initialise "
                             f"these (a new head with another num_labels), pass ignore_mismatched_sizes=True")
        load = {k[len(self._prefix):] if self._prefix and k.startswith(self._prefix) else k: v
                for k, v in state.items() if k in own and k not in {m[0] for m in mismatched}}
        fresh = missing + [m[0] for m in mismatched]
        if fresh:
            # Initialise the modules that lack weights first, then load: a module missing only
            # its bias keeps the weight the checkpoint has.
            owners = sorted({k[len(self._prefix):].rsplit(".", 1)[0] for k in fresh})
            for name in owners:
                try:
                    module = self.get_submodule(name)
                except AttributeError:
                    module = None
                if isinstance(module, nn.Module):
                    init_weights(module, self.config, prefix=name)
            if "mask_token" in fresh:
                nn.init.trunc_normal_(self.mask_token, std=self.config.initializer_range)
        super().load_state_dict(load, strict=False)
        if fresh:
            logger.warning("%s: weights of %s not in the checkpoint, newly initialised (train before use): %s",
                           source, type(self).__name__, ", ".join(fresh))
        decoder = [k for k in unexpected if k.startswith(_DECODER_KEYS)]
        if decoder and len(decoder) == len(unexpected):  # a pretraining checkpoint, loaded to fine-tune
            logger.info("%s: the pretraining decoder's %d weights are not used: %s keeps the encoder only",
                        source, len(decoder), type(self).__name__)
        elif unexpected:
            logger.info("%s: checkpoint weights not used by %s: %s", source, type(self).__name__,
                        ", ".join(unexpected))
        return self._transformers_report(own, missing, unexpected, mismatched)

    def _transformers_report(self, own: dict[str, torch.Tensor], missing: list[str], unexpected: list[str],
                             mismatched: list[tuple[str, tuple, tuple]]) -> dict[str, Any]:
        """The loading report as transformers gives it: its key names, sets."""
        bare = self._prefix == ""

        def names(key: str) -> list[str]:
            if key not in own:  # a checkpoint key the model lacks: already in the checkpoint's naming
                return [key[len(self._prefix):] if self._prefix and key.startswith(self._prefix) else key]
            return list(checkpoint.to_transformers({key: own[key]}, with_prefix=bare, version=5))

        return {"missing_keys": {n for k in missing for n in names(k)},
                "unexpected_keys": {n for k in unexpected for n in names(k)},
                "mismatched_keys": {(n, a, b) for k, a, b in mismatched for n in names(k)},
                "error_msgs": []}
