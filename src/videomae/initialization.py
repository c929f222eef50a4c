"""The original recipe's weight initialisation, below both the model classes (which
initialise themselves when built) and the loader (which initialises what a checkpoint lacks)."""

from __future__ import annotations

from torch import nn

from .config import VideoMAEConfig


def init_weights(module: nn.Module, config: VideoMAEConfig, prefix: str = "") -> None:
    """The original recipe's initialisation: xavier-uniform linears and patch projection,
    unit layer norms, zero q / v biases, truncated-normal mask token and classifier. `prefix`
    is the module's name inside the model."""
    for name, m in module.named_modules(prefix=prefix):
        if isinstance(m, nn.Linear):
            if name.endswith("classifier"):
                nn.init.trunc_normal_(m.weight, std=config.initializer_range)
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv3d):
            w = m.weight
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(getattr(m, "q_bias", None), nn.Parameter):  # attention: biases on q and v, none on k
            nn.init.zeros_(m.q_bias)
            nn.init.zeros_(m.v_bias)
        if isinstance(getattr(m, "pos_embed", None), nn.Parameter):  # a learned position table
            nn.init.trunc_normal_(m.pos_embed, std=config.initializer_range)
    mask_token = getattr(module, "mask_token", None)
    if isinstance(mask_token, nn.Parameter):
        nn.init.trunc_normal_(mask_token, std=config.initializer_range)


__all__ = ["init_weights"]
