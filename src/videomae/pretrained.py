"""`from_pretrained` / `save_pretrained` shared by every model class."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, TypeVar
from collections.abc import Iterator

import torch
from safetensors.torch import save_file
from torch import nn

from . import checkpoint as ckpt
from .config import CONFIG_NAME, VideoMAEConfig
from .hub import resolve_file

logger = logging.getLogger(__name__)
M = TypeVar("M", bound="PreTrainedVideoMAE")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
_skip_init = False


@contextlib.contextmanager
def _no_init() -> Iterator[None]:
    """Skip the weight initialisation pass while building a model that is about to be loaded."""
    global _skip_init
    previous, _skip_init = _skip_init, True
    try:
        yield
    finally:
        _skip_init = previous


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

    def __init__(self, config: VideoMAEConfig) -> None:
        super().__init__()
        if not isinstance(config, VideoMAEConfig):
            raise ValueError(f"{type(self).__name__} needs a VideoMAEConfig, got {type(config).__name__}")
        self.config = config
        self.gradient_checkpointing = False

    def post_init(self) -> None:
        if not _skip_init:
            from .modeling import init_weights

            init_weights(self, self.config)

    # ----------------------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    def gradient_checkpointing_enable(self) -> None:
        """Recompute block activations in the backward pass: less memory, about 30% more time."""
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = False

    @property
    def _prefix(self) -> str:
        """What our keys lack compared with the internal layout (a bare encoder lacks `videomae.`)."""
        return "" if hasattr(self, "videomae") else "videomae."

    def internal_state_dict(self) -> dict[str, torch.Tensor]:
        return {self._prefix + k: v for k, v in self.state_dict().items()}

    # ----------------------------------------------------------------------------- saving
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        safe_serialization: bool = True,
        max_shard_size: int | str | None = None,
    ) -> Path:
        """Write config.json and the weights in transformers' layout, atomically."""
        folder = Path(save_directory)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{folder}: expected a directory to save the model in, found a file")
        folder.mkdir(parents=True, exist_ok=True)
        state = ckpt.to_transformers(self.internal_state_dict(), with_prefix=bool(self._prefix == ""))
        state = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
        config = self.config.copy()
        config.extra["architectures"] = [type(self).__name__]
        for stale in ckpt.WEIGHT_NAMES:
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
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        config: VideoMAEConfig | None = None,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        torch_dtype: torch.dtype | str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        **config_overrides: Any,
    ) -> M | tuple[M, dict[str, list]]:
        """Load from a folder (config.json + safetensors or .bin, sharded or not), a hub repo id,
        or a single weights file (an original `.pth` checkpoint infers its config).

        Config fields can be overridden by keyword (`num_labels=10`); a new head size needs
        `ignore_mismatched_sizes=True`.
        """
        source = Path(pretrained_model_name_or_path)
        name = os.fspath(pretrained_model_name_or_path)
        hub = dict(revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only)
        if source.is_file():
            weights_path = source
            sibling = source.parent / CONFIG_NAME
            config_path = sibling if sibling.is_file() else None
        elif source.is_dir():
            weights_path = ckpt.find_weights(source)
            config_path = resolve_file(source, CONFIG_NAME, required=config is None)
        elif name.endswith(_WEIGHT_SUFFIXES):
            raise FileNotFoundError(f"{name}: no such checkpoint file")
        else:
            config_path = resolve_file(name, CONFIG_NAME, required=config is None, **hub)
            weights_path = None
            for weights_name in ckpt.WEIGHT_NAMES:
                weights_path = resolve_file(name, weights_name, required=False, **hub)
                if weights_path is not None:
                    break
            if weights_path is None:
                raise FileNotFoundError(f"hub repo {name!r} has none of {', '.join(ckpt.WEIGHT_NAMES)}")
        fetch = None
        if not source.exists():  # a hub repo: shards named by an index are downloaded one by one
            def fetch(shard: str) -> Path | None:
                return resolve_file(name, shard, **hub)
        raw = ckpt.read_weights(weights_path, fetch)
        try:
            state, layout = ckpt.to_internal(raw)
        except ValueError as err:
            raise ValueError(f"{weights_path}: {err}") from None

        if config is not None:
            config = config.copy(**config_overrides) if config_overrides else config
        elif config_path is not None:
            config = VideoMAEConfig.from_json_file(config_path, **config_overrides)
        elif layout in ("original", "internal"):
            config = VideoMAEConfig.from_dict(ckpt.infer_config_fields(state), **config_overrides)
        else:
            raise FileNotFoundError(f"{weights_path}: no config.json beside it; pass config=VideoMAEConfig(...)")

        with _no_init():
            model = cls(config)
        info = model.load_internal_state_dict(state, ignore_mismatched_sizes, str(weights_path))
        if torch_dtype is not None and torch_dtype != "auto":
            model = model.to(getattr(torch, torch_dtype) if isinstance(torch_dtype, str) else torch_dtype)
        model.eval()
        return (model, info) if output_loading_info else model

    def load_internal_state_dict(
        self, state: dict[str, torch.Tensor], ignore_mismatched_sizes: bool = False, source: str = "checkpoint"
    ) -> dict[str, list]:
        """Load internal-layout weights; initialise what is missing and say so by name."""
        from .modeling import init_weights

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
        self.load_state_dict(load, strict=False)
        if fresh:
            logger.warning("%s: weights of %s not in the checkpoint, newly initialised (train before use): %s",
                           source, type(self).__name__, ", ".join(fresh))
        if unexpected:
            logger.info("%s: checkpoint weights not used by %s: %s", source, type(self).__name__,
                        ", ".join(unexpected))
        return {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": mismatched}
