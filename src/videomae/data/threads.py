"""Batches made by threads of the training process: for datasets that decode on the GPU.

DataLoader worker processes cannot share the training process's CUDA context, so a dataset
whose decoder returns CUDA tensors (NVDEC) runs in threads here instead: the decoder and the
GPU transforms release the GIL while they work. Same contract as a DataLoader over the same
sampler with `batch_size=chunk`: chunks of keys in sampler order, each collated, delivered in
order, a bounded number in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from torch.utils.data import Dataset, Sampler

__all__ = ["ThreadedChunks"]


class ThreadedChunks:
    """Iterate `collate([dataset[key] for key in chunk])` over the sampler's keys, `chunk` keys
    at a time, computed by `threads` threads with at most `in_flight` chunks ahead."""

    def __init__(self, dataset: Dataset, sampler: Sampler, chunk: int, collate: Callable[[list[Any]], Any],
                 threads: int, in_flight: int) -> None:
        if chunk < 1 or threads < 1 or in_flight < 1:
            raise ValueError(f"chunk, threads and in_flight must be >= 1, got {chunk}, {threads}, {in_flight}")
        self.dataset, self.sampler, self.chunk, self.collate = dataset, sampler, chunk, collate
        self.threads, self.in_flight = threads, in_flight

    def _load(self, keys: list[Any]) -> Any:
        return self.collate([self.dataset[key] for key in keys])

    def _chunks(self) -> Iterator[list[Any]]:
        keys: list[Any] = []
        for key in self.sampler:
            keys.append(key)
            if len(keys) == self.chunk:
                yield keys
                keys = []
        if keys:
            yield keys

    def __iter__(self) -> Iterator[Any]:
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="videomae-load")
        pending: deque[Future] = deque()
        chunks = self._chunks()
        try:
            for keys in chunks:
                pending.append(pool.submit(self._load, keys))
                if len(pending) >= self.in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.chunk)
