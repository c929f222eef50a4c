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


class RunSampler(Sampler[SampleKey]):
    """Every key of a whole run for one rank: epoch after epoch, `per_epoch` keys each, from
    (`start_epoch`, `start`) to the end of `epochs`.

    One DataLoader iterator over it keeps its workers busy across epoch boundaries: a loader
    restarted each epoch drains its prefetch queue at the end of every epoch and refills it at
    the start, which with few steps per epoch idles most workers. The keys are those a
    `ResumableSampler` yields epoch by epoch, so the data order does not change.
    """

    def __init__(self, base: ResumableSampler, per_epoch: int, epochs: int, start_epoch: int = 0,
                 start: int = 0) -> None:
        if not 0 <= per_epoch <= base.per_rank:
            raise ValueError(f"per_epoch must be in [0, {base.per_rank}], got {per_epoch}")
        if not 0 <= start <= per_epoch:
            raise ValueError(f"start must be in [0, {per_epoch}], got {start}")
        self.base = base
        self.per_epoch = per_epoch
        self.epochs = epochs
        self.start_epoch = start_epoch
        self.start = start

    def __iter__(self) -> Iterator[SampleKey]:
        for epoch in range(self.start_epoch, self.epochs):
            self.base.set_epoch(epoch)
            first = self.start if epoch == self.start_epoch else 0
            for index in self.base.rank_indices()[first:self.per_epoch]:
                yield index, epoch

    def __len__(self) -> int:
        return max(0, (self.epochs - self.start_epoch) * self.per_epoch - self.start)


__all__ = ["ResumableSampler", "RunSampler", "SampleKey", "sample_seed", "epoch_permutation", "AUGMENT", "MASK",
           "ORDER", "MIXUP"]
