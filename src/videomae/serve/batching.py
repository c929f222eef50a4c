"""Requests of many clients, one model: a bounded admission count and a batching worker.

    request -> Admission.enter()          (503 when `limit` requests already wait)
            -> [upload, decode: threads]  (the event loop only awaits)
            -> Batcher.submit(job)        -> [one worker thread: gather jobs for `wait_s` or
                                              until `max_clips`, run them as one batch]
            -> the job's Future           <- results, in the order of the jobs

A request counts against the admission limit from the moment it is accepted until the worker
takes its job from the queue (or it fails before that), so uploads, decoding and the queue
together never hold more than `limit` requests: nothing here grows without bound.

No web framework is imported here; `videomae.serve.app` wires these parts to HTTP.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Busy(Exception):
    """The admission limit is reached: answer 503 and let the client retry."""


class Admission:
    """A count of requests in the service that are not yet with the model, capped at `limit`.

    `enter` never blocks: past the limit it raises `Busy` at once, which is what a client of a
    full service wants (a quick 503), not a wait of unknown length."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the queue limit must be >= 1, got {limit}")
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    def enter(self) -> Ticket:
        with self._lock:
            if self._count >= self.limit:
                raise Busy(f"the service is full ({self.limit} requests waiting); retry shortly")
            self._count += 1
        return Ticket(self)

    def _leave(self) -> None:
        with self._lock:
            self._count -= 1


class Ticket:
    """One admitted request's place; `release` may be called from any thread, any number of
    times, and frees the place once."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._admission._leave()


@dataclass
class Job:
    """Work for the model: `kind` picks the batch function, `size` is its number of clips."""

    kind: str
    payload: Any
    size: int
    ticket: Ticket | None = None
    future: Future = field(default_factory=Future)
    submitted: float = field(default_factory=time.perf_counter)
    started: float = 0.0  # when its batch began on the model


BatchFunction = Callable[[str, Sequence[Job]], Sequence[Any]]


class Batcher:
    """One worker thread runs every batch, so the model is never entered twice at once.

    The worker takes the first job that arrives, then gathers more for up to `wait_s` seconds
    (fewer when no other request is admitted, so a lone client does not wait; with 0, only
    the jobs already queued) or until `max_clips` clips, groups them by kind and calls
    `run(kind, jobs)`, which returns one result per job. An exception fails every job of that
    batch.

    `hold_file`: while this file exists the worker waits before running a batch (tests use it
    to fill the queue deterministically; see the `VIDEOMAE_SERVE_HOLD` environment variable).
    """

    def __init__(self, run: BatchFunction, *, max_clips: int, wait_s: float, admission: Admission,
                 on_batch: Callable[[str, int, int, float], None] | None = None,
                 hold_file: str | os.PathLike | None = None) -> None:
        if max_clips < 1:
            raise ValueError(f"the batch size must be >= 1 clip, got {max_clips}")
        if wait_s < 0:
            raise ValueError(f"the wait window must be >= 0 s, got {wait_s}")
        self.run = run
        self.max_clips = max_clips
        self.wait_s = wait_s
        self.admission = admission
        self.on_batch = on_batch
        self.hold_file = Path(hold_file) if hold_file else None
        self.busy = False  # a batch is on the model
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="videomae-batcher", daemon=True)
        self._stopped = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, job: Job) -> Future:
        if self._stopped:
            raise Busy("the service is shutting down")
        self._queue.put(job)
        return job.future

    # ------------------------------------------------------------------ the worker
    def _take(self, job: Job) -> bool:
        """The worker has the job: its admission place is free; False when its client gave up."""
        if job.ticket is not None:
            job.ticket.release()
        return job.future.set_running_or_notify_cancel()

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        jobs = [first] if self._take(first) else []
        clips = sum(job.size for job in jobs)
        deadline = time.perf_counter() + self.wait_s
        while clips < self.max_clips:
            remaining = deadline - time.perf_counter()
            alone = self.admission.count == 0 and self._queue.empty()  # nobody else is on the way
            try:
                if remaining > 0 and not alone:
                    job = self._queue.get(timeout=remaining)
                else:  # the window is over: only what is already queued
                    job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            if self._take(job):
                jobs.append(job)
                clips += job.size
        return jobs, False

    def _hold(self) -> None:
        while self.hold_file is not None and self.hold_file.exists() and not self._stopped:
            time.sleep(0.01)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._gather(first)
            self.busy = True
            try:
                self._hold()
                kinds: dict[str, list[Job]] = {}
                for job in jobs:
                    kinds.setdefault(job.kind, []).append(job)
                for kind, group in kinds.items():
                    self._run_group(kind, group)
            finally:
                self.busy = False
            if stop:
                return

    def _run_group(self, kind: str, jobs: list[Job]) -> None:
        start = time.perf_counter()
        for job in jobs:
            job.started = start
        try:
            results = self.run(kind, jobs)
            if len(results) != len(jobs):
                raise RuntimeError(f"the {kind} batch returned {len(results)} results for {len(jobs)} jobs")
        except BaseException as err:  # noqa: BLE001 - handed to every waiting client
            for job in jobs:
                job.future.set_exception(err)
            return
        finally:
            if self.on_batch is not None:
                self.on_batch(kind, len(jobs), sum(job.size for job in jobs), time.perf_counter() - start)
        for job, result in zip(jobs, results):
            job.future.set_result(result)


__all__ = ["Admission", "Ticket", "Busy", "Job", "Batcher"]
