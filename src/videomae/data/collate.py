"""Batching: drop the videos that failed to decode (and say which), flatten repeated clips,
and draw the pretraining masks.

Failures travel inside the batch (`batch["failures"]`, a list of (path, reason)), so they
reach the main process from any DataLoader worker; the training loop gathers them over
ranks. Masks are drawn here, in the workers, by a callable mask generator; each sample's
generator is seeded by (seed, epoch, index), so a clip's mask does not depend on the batch,
the worker or the number of processes it was loaded with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

import torch

from ..masking import random_mask, running_cell_mask, tube_mask
from .datasets import DecodeFailure
from .sampler import MASK, sample_seed


@dataclass(frozen=True)
class MaskGenerator:
    """Draws `bool_masked_pos` (batch, t*h*w), True = masked. `kind` 'tube' masks the same
    spatial positions in every temporal slice (the paper's default); 'random' masks tokens
    independently. `decoder_mask_ratio` > 0 also draws VideoMAE V2's running-cell decoder
    masks (`decoder_mask`)."""

    grid_size: tuple[int, int, int]
    mask_ratio: float = 0.9
    kind: str = "tube"
    decoder_mask_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("tube", "random"):
            raise ValueError(f"mask kind must be 'tube' or 'random', got {self.kind!r}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        if self.decoder_mask_ratio:  # its own checks, at construction rather than in a worker
            running_cell_mask(self.grid_size, self.decoder_mask_ratio, 1, torch.Generator())

    @property
    def num_patches(self) -> int:
        t, h, w = self.grid_size
        return t * h * w

    def __call__(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        if self.kind == "tube":
            return tube_mask(self.grid_size, self.mask_ratio, batch_size, generator)
        return random_mask(self.num_patches, self.mask_ratio, batch_size, generator)

    def decoder_mask(self, batch_size: int, generator: torch.Generator) -> torch.Tensor | None:
        """`decoder_masked_pos` (batch, t*h*w), True = not reconstructed; None when off."""
        if not self.decoder_mask_ratio:
            return None
        return running_cell_mask(self.grid_size, self.decoder_mask_ratio, batch_size, generator)


def split_failures(samples: Sequence[Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    good = [s for s in samples if not isinstance(s, DecodeFailure)]
    failed = [(s.path, s.reason) for s in samples if isinstance(s, DecodeFailure)]
    return good, failed


@dataclass
class TrainCollate:
    """Samples of `VideoClipDataset` -> a batch of clips.

    Output: `pixel_values` uint8 (clips, T, C, H, W) with each video's `num_sample` clips next
    to each other, `labels` (clips,), `index` (clips,), `failures`, `num_videos` (videos tried,
    failed or not), `weight` (0.0 when every video failed: the batch is then one black stand-in
    clip, so that this process still joins the gradient all-reduce, contributing nothing), and
    `bool_masked_pos` with a mask generator (and `decoder_masked_pos` when it draws those).
    """

    clip_shape: tuple[int, int, int, int]  # (T, C, H, W)
    mask_generator: MaskGenerator | None = None
    seed: int = 0

    def __call__(self, samples: Sequence[Any]) -> dict[str, Any]:
        good, failures = split_failures(samples)
        if good:
            pixels = torch.cat([s["pixel_values"] for s in good])
            counts = [s["pixel_values"].shape[0] for s in good]
            labels = torch.tensor([s["label"] for s, n in zip(good, counts) for _ in range(n)], dtype=torch.long)
            index = torch.tensor([s["index"] for s, n in zip(good, counts) for _ in range(n)], dtype=torch.long)
            weight = 1.0
        else:
            pixels = torch.zeros((1, *self.clip_shape), dtype=torch.uint8)
            labels = torch.zeros(1, dtype=torch.long)
            index = torch.full((1,), -1, dtype=torch.long)
            weight = 0.0
        batch: dict[str, Any] = {"pixel_values": pixels, "labels": labels, "index": index,
                                 "failures": failures, "weight": weight, "num_videos": len(samples)}
        if self.mask_generator is not None:
            if good:  # per sample: (count, generator); the decoder mask continues the same generator
                draws = [(s["pixel_values"].shape[0], torch.Generator().manual_seed(
                    sample_seed(self.seed, s["epoch"], s["index"], MASK))) for s in good]
            else:
                draws = [(1, torch.Generator().manual_seed(self.seed))]
            masks = [(self.mask_generator(n, g), self.mask_generator.decoder_mask(n, g)) for n, g in draws]
            batch["bool_masked_pos"] = torch.cat([m for m, _ in masks])
            if self.mask_generator.decoder_mask_ratio:
                batch["decoder_masked_pos"] = torch.cat([d for _, d in masks])
        return batch


def merge_batches(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batches of `TrainCollate` (chunks of one step's batch, loaded by different workers) ->
    one batch. `pixel_values` stays a list of the chunks' tensors, so each is copied to the
    device as it is (from pinned memory) and joined there, not joined in host memory first.
    A chunk whose videos all failed holds only a stand-in clip: it is left out unless every
    chunk failed, and then the batch is one stand-in of weight 0."""
    failures = [f for part in parts for f in part["failures"]]
    good = [part for part in parts if part["weight"]] or list(parts[:1])
    batch: dict[str, Any] = {
        "pixel_values": [part["pixel_values"] for part in good],
        "labels": torch.cat([part["labels"] for part in good]),
        "index": torch.cat([part["index"] for part in good]),
        "failures": failures,
        "weight": 1.0 if any(part["weight"] for part in parts) else 0.0,
        "num_videos": sum(part.get("num_videos", 0) for part in parts),
    }
    for key in ("bool_masked_pos", "decoder_masked_pos"):
        if key in good[0]:
            batch[key] = torch.cat([part[key] for part in good])
    return batch


def eval_collate(samples: Sequence[Any]) -> dict[str, Any]:
    """Samples of `MultiViewDataset` -> `pixel_values` uint8 (videos, views, T, C, H, W),
    `labels`, `index`, `failures` (a batch may hold no video at all)."""
    good, failures = split_failures(samples)
    if good:
        pixels = torch.stack([s["pixel_values"] for s in good])
    else:
        pixels = torch.zeros((0, 0, 0, 0, 0, 0), dtype=torch.uint8)
    return {"pixel_values": pixels, "labels": torch.tensor([s["label"] for s in good], dtype=torch.long),
            "index": torch.tensor([s["index"] for s in good], dtype=torch.long), "failures": failures}


__all__ = ["MaskGenerator", "TrainCollate", "eval_collate", "merge_batches", "split_failures"]
