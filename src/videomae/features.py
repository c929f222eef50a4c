"""What `embed` extracts from each clip.

Feature kinds (`feature_function`):
    mean    the mean of the encoder's output tokens (B, D)
    pooled  a fine-tuned classifier's pooled fc_norm feature, the classifier's input (B, D)
    logits  a classifier's logits (B, num_labels)
    tokens  the full token grid (B, T', H', W', D), T' = frames / tubelet, H' = height / patch, ...;
            written as float16 (a base model's grid is 8 x 14 x 14 x 768, about 2.4 MB a clip)
    auto    pooled for a classifier, mean for an encoder (what `embed` did before the choice)

The per-clip Parquet file these go to is `videomae.writers.embed_to_parquet`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

FEATURE_KINDS = ("auto", "mean", "pooled", "logits", "tokens")


def resolve_kind(model: nn.Module, kind: str) -> str:
    """`kind` for this model ("auto" made concrete); an error for a kind the model cannot give."""
    if kind not in FEATURE_KINDS:
        raise ValueError(f"--features {kind!r}: use one of {', '.join(FEATURE_KINDS)}")
    is_classifier = hasattr(model, "forward_features")
    if kind == "auto":
        return "pooled" if is_classifier else "mean"
    if kind in ("pooled", "logits") and not is_classifier:
        raise ValueError(f"--features {kind}: needs a fine-tuned classifier checkpoint, and this one is an encoder "
                         f"(use mean or tokens)")
    return kind


def feature_function(model: nn.Module, kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """pixel_values (B, T, C, H, W) -> the feature of each clip, (B, ...) as the kind says."""
    kind = resolve_kind(model, kind)
    encoder = getattr(model, "videomae", model)
    config = model.config
    h, w = config.image_hw

    def tokens(pixels: torch.Tensor) -> torch.Tensor:
        return encoder(pixels, return_dict=True).last_hidden_state  # (B, N, D)

    if kind == "mean":
        return lambda pixels: tokens(pixels).mean(dim=1)
    if kind == "pooled":
        return lambda pixels: model.forward_features(pixels)[0]
    if kind == "logits":
        return lambda pixels: model(pixels).logits
    grid = (config.num_frames // config.tubelet_size, h // config.patch_size, w // config.patch_size)  # (T', H', W')

    def token_grid(pixels: torch.Tensor) -> torch.Tensor:
        x = tokens(pixels)
        return x.reshape(x.shape[0], *grid, x.shape[-1])  # (B, T', H', W', D): tokens are time-major

    return token_grid


__all__ = ["FEATURE_KINDS", "resolve_kind", "feature_function"]
