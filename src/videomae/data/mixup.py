"""Mixup and CutMix on video batches (B, T, C, H, W), with soft, label-smoothed targets.

The recipe of the original fine-tuning code (timm's `Mixup`, "batch" mode): with probability
`prob` a batch is mixed with itself reversed; CutMix is chosen over Mixup with probability
`switch_prob`; lambda is drawn from Beta(alpha, alpha). The CutMix box is spatial and the same
on every frame. Randomness comes from the generator the caller passes, so a step's mixing is
a function of the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def soft_targets(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot targets (B, num_classes) with label smoothing: off = s / K, on = 1 - s + s / K."""
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    out = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return out.scatter_(1, labels.long().view(-1, 1), on)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets, averaged over the batch."""
    return torch.sum(-targets * torch.log_softmax(logits.float(), dim=-1), dim=-1).mean()


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A box of area about (1 - lam) * H * W, centred uniformly, clipped to the frame."""
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    y0, y1 = np.clip(cy - cut_h // 2, 0, height), np.clip(cy + cut_h // 2, 0, height)
    x0, x1 = np.clip(cx - cut_w // 2, 0, width), np.clip(cx + cut_w // 2, 0, width)
    return int(y0), int(y1), int(x0), int(x1)


@dataclass
class Mixup:
    """Mix a batch with its reverse; return the mixed videos and their soft targets.

    Args:
        num_classes: size of the target vectors.
        mixup_alpha: Beta parameter of Mixup (0 disables Mixup).
        cutmix_alpha: Beta parameter of CutMix (0 disables CutMix).
        prob: probability that a batch is mixed at all.
        switch_prob: probability of CutMix rather than Mixup when both are enabled.
        label_smoothing: smoothing applied to the targets before mixing.
    """

    num_classes: int
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ValueError(f"mixup_alpha and cutmix_alpha must be >= 0, got {self.mixup_alpha}, "
                             f"{self.cutmix_alpha}")
        if not (0.0 <= self.prob <= 1.0 and 0.0 <= self.switch_prob <= 1.0):
            raise ValueError(f"prob and switch_prob must be in [0, 1], got {self.prob}, {self.switch_prob}")

    @property
    def active(self) -> bool:
        return self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)

    def params(self, rng: np.random.Generator) -> tuple[float, bool]:
        """(lambda, use_cutmix) for one batch; lambda 1.0 means no mixing."""
        if not self.active or rng.random() >= self.prob:
            return 1.0, False
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = bool(rng.random() < self.switch_prob)
        else:
            use_cutmix = self.cutmix_alpha > 0
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        return float(rng.beta(alpha, alpha)), use_cutmix

    def __call__(
        self, pixel_values: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C, H, W) videos and (B,) integer labels -> mixed videos and (B, K) targets.
        The input is not modified."""
        if pixel_values.dim() != 5:
            raise ValueError(f"Mixup expects videos (B, T, C, H, W), got shape {tuple(pixel_values.shape)}")
        lam, use_cutmix = self.params(rng)
        mixed = pixel_values
        if lam < 1.0:
            flipped = pixel_values.flip(0)
            if use_cutmix:
                h, w = pixel_values.shape[-2:]
                y0, y1, x0, x1 = cutmix_box(h, w, lam, rng)
                mixed = pixel_values.clone()
                mixed[..., y0:y1, x0:x1] = flipped[..., y0:y1, x0:x1]
                lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)  # the area actually swapped
            else:
                mixed = pixel_values * lam + flipped * (1.0 - lam)
        targets = soft_targets(labels, self.num_classes, self.label_smoothing)
        targets = targets * lam + targets.flip(0) * (1.0 - lam)
        return mixed, targets


__all__ = ["Mixup", "soft_targets", "soft_cross_entropy", "cutmix_box"]
