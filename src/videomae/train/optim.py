"""Parameter groups (weight decay, layer-wise lr decay), AdamW and the learning-rate schedule.

The recipe of the original code: no weight decay on biases, norms and the mask token (every
parameter with one dimension or fewer, and tokens); with layer decay, the patch embedding is
layer 0, block i is layer i + 1, everything after the blocks (final norm, fc_norm, head) is
layer L + 1, and layer l's lr is scaled by decay ** (L + 1 - l).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


def param_groups(
    model: nn.Module, weight_decay: float, layer_decay: float = 1.0, num_layers: int | None = None
) -> list[dict]:
    """AdamW parameter groups: one per (layer, decay or not), each with `lr_scale`,
    `weight_decay`, `layer_id` and `param_names`. `layer_decay` 1.0 gives two groups.

    Which parameters decay and how deep each is, the model says (`no_weight_decay`,
    `layer_ids`); a module without those answers decays its matrices and kernels only.
    """
    if hasattr(model, "no_weight_decay"):
        no_decay = set(model.no_weight_decay())
    else:
        no_decay = {name for name, param in model.named_parameters() if param.ndim <= 1}
    layers: dict[str, int] = {}
    if layer_decay < 1.0:
        if not hasattr(model, "layer_ids"):
            raise ValueError(f"layer_decay < 1 needs a model that says each parameter's layer (layer_ids); "
                             f"{type(model).__name__} does not")
        layers = model.layer_ids()
        if num_layers is None:
            num_layers = max(layers.values()) - 1
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = name not in no_decay
        layer = layers.get(name, 0)
        scale = layer_decay ** (num_layers + 1 - layer) if layer_decay < 1.0 else 1.0
        group = groups.setdefault((layer, decay), {
            "params": [], "param_names": [], "weight_decay": weight_decay if decay else 0.0,
            "lr_scale": scale, "layer_id": layer,
        })
        group["params"].append(param)
        group["param_names"].append(name)
    return [groups[key] for key in sorted(groups)]


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float],
    eps: float = 1e-8,
    layer_decay: float = 1.0,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW over `param_groups`; fused kernels where every parameter is on CUDA."""
    groups = param_groups(model, weight_decay, layer_decay)
    if fused is None:
        fused = all(p.is_cuda for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                             fused=bool(fused) or None)


@dataclass(frozen=True)
class CosineSchedule:
    """Linear warmup from `warmup_lr` to `peak_lr`, then cosine to `min_lr` at `total_steps`.
    `lr(step)` is a pure function: the rate of optimizer step `step` (0-based)."""

    peak_lr: float
    total_steps: int
    warmup_steps: int = 0
    min_lr: float = 0.0
    warmup_lr: float = 0.0

    def lr(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_lr + (self.peak_lr - self.warmup_lr) * step / self.warmup_steps
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        return self.min_lr + 0.5 * (self.peak_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's lr for `step` (times its `lr_scale`); return the unscaled rate."""
        lr = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr


def scaled_lr(base_lr: float, global_batch: int) -> float:
    """The linear scaling rule of the recipe: base_lr * global_batch / 256."""
    return base_lr * global_batch / 256


__all__ = ["param_groups", "build_optimizer", "CosineSchedule", "scaled_lr"]
