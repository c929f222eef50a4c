"""A deterministic, resumable, distributed sampler.

The data order is a pure function of (seed, epoch): the same on every run, every number of
processes and every resume. Ranks take interleaved slices of one permutation, so with the
same global batch a run on N processes sees, step by step, the same samples as a run on one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

SampleKey = tuple[int, int]
"""What the sampler yields and the datasets take: (index, epoch). The epoch lets a dataset
draw its augmentation from (seed, epoch, index) alone, whichever worker or rank loads it."""


# Independent random streams drawn from the same (seed, epoch, index).
AUGMENT, MASK, ORDER, MIXUP = 0, 1, 2, 3


def sample_seed(seed: int, epoch: int, index: int, stream: int = AUGMENT) -> int:
    """A 63-bit seed for one sample's random choices; `stream` separates independent uses
    (augmentation, masking, ...) of the same sample. All arguments are non-negative."""
    if min(seed, epoch, index, stream) < 0:
        raise ValueError(f"seed, epoch, index and stream must be >= 0, got {(seed, epoch, index, stream)}")
    state = np.random.SeedSequence([seed, epoch, index, stream]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def epoch_permutation(num_samples: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """The order of all samples in one epoch."""
    if not shuffle:
        return list(range(num_samples))
    generator = torch.Generator().manual_seed(sample_seed(seed, epoch, 0, ORDER))
    return torch.randperm(num_samples, generator=generator).tolist()


class ResumableSampler(Sampler[SampleKey]):
    """Yields (index, epoch) keys for one rank; can start in the middle of an epoch.

    Args:
        num_samples: size of the dataset.
        num_replicas: number of processes (world size).
        rank: this process.
        shuffle: permute each epoch (training) or keep the order (evaluation).
        seed: the data-order seed.
        drop_last: training drops the tail so every rank has the same count; evaluation pads
            by repeating the first samples (callers de-duplicate by index).
    """

    def __init__(
        self,
        num_samples: int,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
    ) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.num_samples = num_samples
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.start = 0
        if drop_last:
            self.per_rank = num_samples // num_replicas
        else:
            self.per_rank = math.ceil(num_samples / num_replicas)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch, and skip its first `start` samples of this rank (already
        consumed before a resume). Skipped samples are never loaded."""
        if not 0 <= start <= self.per_rank:
            raise ValueError(f"start must be in [0, {self.per_rank}], got {start}")
        self.epoch = epoch
        self.start = start

    def rank_indices(self) -> list[int]:
        """This rank's indices for the current epoch, from the beginning."""
        order = epoch_permutation(self.num_samples, self.seed, self.epoch, self.shuffle)
        total = self.per_rank * self.num_replicas
        if total > len(order) and order:
            order = (order * math.ceil(total / len(order)))[:total]
        return order[:total][self.rank::self.num_replicas]

    def __iter__(self) -> Iterator[SampleKey]:
        for index in self.rank_indices()[self.start:]:
            yield index, self.epoch

    def __len__(self) -> int:
        return self.per_rank - self.start

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "start": self.start}


__all__ = ["ResumableSampler", "SampleKey", "sample_seed", "epoch_permutation", "AUGMENT", "MASK", "ORDER", "MIXUP"]
